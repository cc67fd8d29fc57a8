import CLua
import CLuaShim

/// A Swift body callable from Lua. It returns the number of results it pushed, or
/// throws a `LuaError` that the C trampoline raises once Swift has returned.
public final class LuaFunction {
    public typealias Body = (LuaState) throws(LuaError) -> Int32

    let body: Body

    init(_ body: @escaping Body) { self.body = body }
}

/// The process-wide entry points the C shim calls. Installed once.
enum LuaDispatch {
    static let installed: Void = {
        nm_install(dispatch, release)
    }()

    private static let dispatch: nm_Dispatcher = { L, function in
        let body = Unmanaged<LuaFunction>.fromOpaque(function!).takeUnretainedValue().body
        let lua = LuaState(L!)
        do throws(LuaError) {
            let results = try body(lua)
            return nm_Status(kind: Int32(NM_RETURN.rawValue), value: results)
        } catch {
            switch error {
            case .argument(let index, let message):
                lua.push(message)
                return nm_Status(kind: Int32(NM_ARGERROR.rawValue), value: index)
            case .message(let message):
                lua.push(message)
                return nm_Status(kind: Int32(NM_ERROR.rawValue), value: 0)
            case .raiseTop:
                return nm_Status(kind: Int32(NM_RAISE.rawValue), value: 0)
            }
        }
    }

    private static let release: nm_Releaser = { box in
        Unmanaged<AnyObject>.fromOpaque(box!).release()
    }
}
