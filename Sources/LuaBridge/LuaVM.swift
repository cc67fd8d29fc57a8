import CLua
import CLuaShim

/// Owns a `lua_State`. Close it explicitly before whatever its Swift functions
/// reach goes away (bridge rule 7): `close()` runs every pending `__gc`.
public final class LuaVM {
    public let state: LuaState
    public private(set) var isClosed = false

    public init() {
        _ = LuaDispatch.installed
        guard let L = nm_newstate() else { fatalError("nodemcu-host: cannot create a Lua state (out of memory)") }
        state = LuaState(L)
    }

    /// Opens the standard libraries (protected: never raises into Swift).
    public func openStandardLibraries() {
        let lua = state
        lua_pushcclosure(lua.L, nm_openlibs_function(), 0)
        _ = lua.pcall(arguments: 0, results: 0)
    }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        nm_close(state.L)
    }

    deinit {
        close()
    }
}
