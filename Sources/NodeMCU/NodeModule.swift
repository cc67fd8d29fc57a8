import LuaBridge

/// Lua: the `node` module — the functions the runtime needs now (chip id, heap,
/// restart, error handler); the rest of spec §5.1 comes with its own issue.
public final class NodeModule {
    unowned let runtime: Runtime

    init(runtime: Runtime) {
        self.runtime = runtime
        let lua = runtime.lua
        lua.newTable()
        lua.setFunction("chipid") { lua throws(LuaError) in
            lua.push(runtime.options.chipID)
            return 1
        }
        lua.setFunction("heap") { lua throws(LuaError) in
            // A plausible free-heap figure for an ESP8266 running a script.
            lua.push(40_000)
            return 1
        }
        lua.setFunction("restart") { [unowned runtime] _ throws(LuaError) in
            runtime.reboot(reason: "node.restart()")
            return 0
        }
        lua.setFunction("bootreason") { [unowned runtime] lua throws(LuaError) in
            lua.push(runtime.bootReason == 0 ? 1 : 2)
            lua.push(runtime.bootReason)
            return 2
        }
        if runtime.profile == .v3_0 {
            lua.setFunction("setonerror") { [unowned runtime] lua throws(LuaError) in
                if let old = runtime.errorHandler { lua.unref(old) }
                runtime.errorHandler = lua.isFunction(1) ? lua.ref(at: 1) : nil
                return 0
            }
        }
        lua.setGlobal("node")
    }
}
