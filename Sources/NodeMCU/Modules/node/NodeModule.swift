import LuaBridge

/// Lua: the `node` module — the functions the runtime needs now (chip id, heap,
/// restart, boot reason, error handler); the rest of spec §5.1 comes with its own issue.
public final class NodeModule: LuaModule {
    public static let name = "node"

    unowned let runtime: Runtime

    public init(runtime: Runtime) {
        self.runtime = runtime
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("chipid") { [unowned self] lua throws(LuaError) in chipid(lua) }
        table.function("heap") { [unowned self] lua throws(LuaError) in heap(lua) }
        table.function("restart") { [unowned self] _ throws(LuaError) in restart() }
        table.function("bootreason") { [unowned self] lua throws(LuaError) in bootreason(lua) }
        if runtime.profile == .v3_0 {
            table.function("setonerror") { [unowned self] lua throws(LuaError) in setonerror(lua) }
        }
    }

    /// Lua: node.chipid()
    private func chipid(_ lua: LuaState) -> Int32 {
        lua.push(runtime.options.chipID)
        return 1
    }

    /// Lua: node.heap() — with `--heap`, the bytes left under the budget; otherwise a
    /// plausible free-heap figure for an ESP8266 running a script.
    private func heap(_ lua: LuaState) -> Int32 {
        lua.push(runtime.options.heapLimit == nil ? 40_000 : lua.heapStatus.free ?? 0)
        return 1
    }

    /// Lua: node.restart() — a simulated reboot once the running Lua has unwound.
    private func restart() -> Int32 {
        runtime.reboot(reason: "node.restart()")
        return 0
    }

    /// Lua: node.bootreason() — `rawcode, reason`: power-on (1, 0) or software restart (2, 4).
    private func bootreason(_ lua: LuaState) -> Int32 {
        lua.push(runtime.bootReason == 0 ? 1 : 2)
        lua.push(runtime.bootReason)
        return 2
    }

    /// Lua: node.setonerror([fn]) (3.0) — without a function the default handler returns.
    private func setonerror(_ lua: LuaState) -> Int32 {
        if let old = runtime.errorHandler { lua.unref(old) }
        runtime.errorHandler = lua.isFunction(1) ? lua.ref(at: 1) : nil
        return 0
    }
}
