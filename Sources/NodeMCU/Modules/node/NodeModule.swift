import CLuaShim
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
        table.function("heap") { lua throws(LuaError) in Self.heap(lua) }
        table.function("restart") { [unowned self] _ throws(LuaError) in restart() }
        table.function("bootreason") { [unowned self] lua throws(LuaError) in bootreason(lua) }
        table.function("compile") { lua throws(LuaError) in try Self.compile(lua) }
        if runtime.profile == .v3_0 {
            table.function("setonerror") { [unowned self] lua throws(LuaError) in setonerror(lua) }
        }
    }

    /// Lua: node.chipid()
    private func chipid(_ lua: LuaState) -> Int32 {
        lua.push(runtime.options.chipID)
        return 1
    }

    /// Lua: node.heap() — a plausible free-heap figure for an ESP8266 running a script.
    private static func heap(_ lua: LuaState) -> Int32 {
        lua.push(40_000)
        return 1
    }

    /// Lua: node.restart() — a simulated reboot once the running Lua has unwound.
    private func restart() -> Int32 {
        runtime.reboot(reason: "node.restart()")
        return 0
    }

    /// Lua: node.compile("x.lua") — writes `x.lc`: host bytecode with the header and
    /// checksum the host's loaders check (spec §5.1; bytecode from anywhere else is
    /// refused). Errors as the firmware's: `not a .lua file`, `filename invalid` (over
    /// 31 characters), the compiler's message, `cannot open/write to file`.
    private static func compile(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard let nameBytes = lua.bytes(at: 1), lua.isStringLike(1) else {
            throw lua.typeError(1, expected: "string")
        }
        let name = String(decoding: nameBytes, as: UTF8.self)
        guard name.count <= 31 else { throw .message("filename invalid") }
        guard name.hasSuffix(".lua"), name.count > 4 else { throw .message("not a .lua file") }
        let output = String(name.dropLast(4)) + ".lc"
        switch nm_compilefile(lua.L, name, output) {
        case 0: return 0
        case 1: throw .raiseTop  // the compiler's message is on top
        default: throw .message("cannot open/write to file")
        }
    }

    /// Lua: node.bootreason() — `rawcode, reason`: power-on (1, 0), software restart
    /// (2, 4) or software watchdog reset (2, 3).
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
