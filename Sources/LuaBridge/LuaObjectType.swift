import CLua
import CLuaShim

/// A Swift class exposed to Lua as full userdata with methods (e.g. `tmr.timer`).
///
/// The userdata holds one retained reference, released exactly once: by `__gc`
/// or by `release(at:)`, whichever comes first (bridge rule 4). The metatable has
/// no `__name` field, so Lua prints `userdata: 0x…` and type errors say `userdata`
/// (spec §6.3).
public struct LuaObjectType<Object: AnyObject> {
    /// The name used in "bad self" messages, e.g. `tmr.timer`.
    public let name: String
    let metatable: LuaRef

    /// A method: the object (`self`, checked) and the state, whose arguments start at
    /// index 2. Returns the number of results pushed.
    public typealias Method = (Object, LuaState) throws(LuaError) -> Int32

    /// Creates the metatable with `methods` as `__index` and a `__gc` that calls
    /// `finalize` (if given) before releasing the object. Each method checks `self`
    /// first (the firmware's "bad self" error) and gets the object it was called on.
    public init(
        name: String,
        in lua: LuaState,
        methods: [(String, Method)],
        metamethods: [(String, LuaFunction.Body)] = [],
        finalize: ((LuaState, Object) -> Void)? = nil
    ) {
        self.init(name: name, in: lua, metamethods: metamethods, finalize: finalize) { metatable in
            methods.map { methodName, method in
                (methodName, { lua throws(LuaError) in
                    var isBox: Int32 = 0
                    guard let raw = nm_toobject(lua.L, 1, metatable.value, &isBox) else {
                        throw .argument(1, "\(name) expected, got \(lua.typeName(at: 1))")
                    }
                    return try method(Unmanaged<Object>.fromOpaque(raw).takeUnretainedValue(), lua)
                })
            }
        }
    }

    /// The same with methods that check `self` themselves (`check`, `release(at:)`):
    /// for a method that must also work on a released object, such as a second `close`.
    public init(
        name: String,
        in lua: LuaState,
        uncheckedMethods methods: [(String, LuaFunction.Body)],
        finalize: ((LuaState, Object) -> Void)? = nil
    ) {
        self.init(name: name, in: lua, metamethods: [], finalize: finalize) { _ in methods }
    }

    private init(
        name: String,
        in lua: LuaState,
        metamethods: [(String, LuaFunction.Body)],
        finalize: ((LuaState, Object) -> Void)?,
        methods: (LuaRef) -> [(String, LuaFunction.Body)]
    ) {
        self.name = name
        lua.newTable(fieldCapacity: 2)
        let metatable = lua.ref(at: -1)
        self.metatable = metatable
        let bodies = methods(metatable)
        lua.newTable(fieldCapacity: Int32(bodies.count))
        for (methodName, body) in bodies {
            lua.push(pinnedFunction: body)
            lua.setField(methodName, in: -2)
        }
        lua.setField("__index", in: -2)
        lua.push(pinnedFunction: { lua throws(LuaError) in
            // __gc: the object may already have been released explicitly.
            if let raw = nm_takeobject(lua.L, 1) {
                let object = Unmanaged<Object>.fromOpaque(raw).takeRetainedValue()
                finalize?(lua, object)
            }
            return 0
        })
        lua.setField("__gc", in: -2)
        // Extra metamethods (`__len`, `__tostring`, …); never `__name` (spec §6.3).
        for (metamethod, body) in metamethods {
            lua.push(pinnedFunction: body)
            lua.setField(metamethod, in: -2)
        }
        lua.pop()
    }

    /// Pushes a new userdata that owns one reference to `object`.
    public func push(_ object: Object, on lua: LuaState) {
        nm_pushobject(lua.L, Unmanaged.passRetained(object).toOpaque(), metatable.value)
    }

    /// The object at `index`, or nil if it is not one of ours (or already released).
    public func object(at index: Int32, on lua: LuaState) -> Object? {
        var isBox: Int32 = 0
        guard let raw = nm_toobject(lua.L, index, metatable.value, &isBox) else { return nil }
        return Unmanaged<Object>.fromOpaque(raw).takeUnretainedValue()
    }

    /// `self` of a method call: the object, or the firmware's "bad self" error
    /// (`calling 'start' on bad self (tmr.timer expected, got table)`).
    public func check(_ index: Int32, on lua: LuaState) throws(LuaError) -> Object {
        if let object = object(at: index, on: lua) { return object }
        throw .argument(index, "\(name) expected, got \(lua.typeName(at: index))")
    }

    /// Releases the object held by the userdata at `index` now (an explicit close);
    /// the later `__gc` then finds nothing to release.
    public func release(at index: Int32, on lua: LuaState) -> Object? {
        var isBox: Int32 = 0
        guard nm_toobject(lua.L, index, metatable.value, &isBox) != nil,
              let raw = nm_takeobject(lua.L, index) else { return nil }
        return Unmanaged<Object>.fromOpaque(raw).takeRetainedValue()
    }
}
