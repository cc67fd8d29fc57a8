import CLuaShim
import LuaBridge

/// Lua: the `node` module, both profiles (behaviour spec §5.1 with more-modules §1,
/// whose corrections win).
///
/// Follows the firmware's app/modules/node.c of tags 2.2.1-master_20180915 and
/// 3.0.0-release_20240225 and docs/modules/node.md, as the specs record them. Split
/// by topic: `+Task` (`node.task.post`), `+Output` (`node.output`, `node.input`),
/// `+Flash` (`info`, `flashsize`, LFS, partitions, startup record). `node.compile`
/// writes host bytecode the loaders accept. There is no `node.uptime`, `readvdd33`, `key` or `led` in
/// either profile's default build (more-modules §1.1), so none here.
public final class NodeModule: LuaModule {
    public static let name = "node"

    unowned let runtime: Runtime
    var profile: FirmwareProfile { runtime.profile }

    // node.output state (+Output)
    var outputFunction: LuaRef?
    var outputPipe: LuaPipe?
    var outputPipeRef: LuaRef?
    var serialCopy = true
    var redirecting = false
    /// 3.0 node.input: text waiting for its newline (the interpreter's stdin pipe).
    var inputPipe: [UInt8] = []
    /// 2.2: a `node.input` line is waiting for its task (the firmware's `line_position`
    /// is set until the line has run); further calls are ignored meanwhile.
    var inputLinePending = false
    /// Lua tasks waiting per priority (node.task.post).
    var pendingLuaTasks = [0, 0, 0]

    // node.egc
    var egcMode = 4
    var egcLimit = 4096
    // node.stripdebug default level
    var stripLevel = 2

    public init(runtime: Runtime) {
        self.runtime = runtime
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("chipid") { [unowned self] lua throws(LuaError) in chipid(lua) }
        table.function("heap") { [unowned self] lua throws(LuaError) in heap(lua) }
        table.function("restart") { [unowned self] _ throws(LuaError) in restart() }
        table.function("bootreason") { [unowned self] lua throws(LuaError) in bootreason(lua) }
        table.function("dsleep") { [unowned self] lua throws(LuaError) in try dsleep(lua) }
        table.function("dsleepMax") { lua throws(LuaError) in Self.dsleepMax(lua) }
        table.function("sleep") { [unowned self] _ throws(LuaError) in try sleep() }
        table.function("restore") { _ throws(LuaError) in Self.restore() }
        table.function("random") { lua throws(LuaError) in try Self.random(lua) }
        table.function("setcpufreq") { [unowned self] lua throws(LuaError) in try setcpufreq(lua) }
        table.function("getcpufreq") { [unowned self] lua throws(LuaError) in getcpufreq(lua) }
        table.function("stripdebug") { [unowned self] lua throws(LuaError) in try stripdebug(lua) }
        table.integer("CPU80MHZ", 80)
        table.integer("CPU160MHZ", 160)
        table.table("egc") { egc in
            egc.function("setmode") { [unowned self] lua throws(LuaError) in try egcSetmode(lua) }
            egc.function("meminfo") { lua throws(LuaError) in Self.egcMeminfo(lua) }
            egc.integer("NOT_ACTIVE", 0)
            egc.integer("ON_ALLOC_FAILURE", 1)
            egc.integer("ON_MEM_LIMIT", 2)
            egc.integer("ALWAYS", 4)
        }
        registerTask(in: &table)
        registerOutput(in: &table)
        registerFlash(in: &table)
        table.function("compile") { lua throws(LuaError) in try Self.compile(lua) }
        if profile == .v3_0 {
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
    /// (2, 4), software watchdog reset (2, 3), deep-sleep wake (2, 5).
    private func bootreason(_ lua: LuaState) -> Int32 {
        lua.push(runtime.bootReason == 0 ? 1 : 2)
        lua.push(runtime.bootReason)
        return 2
    }

    /// Lua: node.dsleep(us[, option[, instant]]) — a simulated deep sleep: nothing runs,
    /// then a reboot with boot reason 5 after `us` µs of device time; 0 (sleep until
    /// reset) ends the process with status 0. nil `us` only sets the option. 2.2 checks
    /// `option` (low 8 bits above 4: `wrong arg range`; `us` is unsigned there, so never
    /// negative); 3.0 checks nothing (more-modules §1.9).
    private func dsleep(_ lua: LuaState) throws(LuaError) -> Int32 {
        if profile == .v2_2, lua.type(at: 2) == .number, let option = lua.integer(at: 2), option & 0xFF > 4 {
            throw .message("wrong arg range")
        }
        guard lua.type(at: 1) == .number || lua.isStringLike(1), let us = lua.integer(at: 1) else { return 0 }
        // Negative counts wrap to huge unsigned ones on the device: a sleep without end.
        runtime.deepSleep(microseconds: us < 0 ? Int64.max / 1000 : Int64(us))
        return 0
    }

    /// Lua: node.dsleepMax() — microseconds (a float), the host's constant.
    private static func dsleepMax(_ lua: LuaState) -> Int32 {
        lua.push(12_000_000_000.0)
        return 1
    }

    /// Lua: node.sleep(...) — unavailable in both default builds: the notice goes straight
    /// to the UART, then the error.
    private func sleep() throws(LuaError) -> Int32 {
        var notice = "\n The options \"TIMER_SUSPEND_ENABLE\" and \"PMSLEEP_ENABLE\" in \"app/include/user_config.h\" were disabled during FW build!\n"
        notice.withUTF8 { runtime.serialWrite(UnsafeRawBufferPointer($0)) }
        throw .message("node.sleep() is unavailable")
    }

    /// Lua: node.restore() — factory-resets the SDK settings; the host has no saved
    /// station configuration yet, so nothing to clear. Returns nothing.
    private static func restore() -> Int32 { 0 }

    /// Lua: node.random() / node.random(n) / node.random(l, u)
    private static func random(_ lua: LuaState) throws(LuaError) -> Int32 {
        switch lua.top {
        case 0:
            lua.push(Double.random(in: 0..<1))
        case 1:
            let upper = try lua.checkInteger(1)
            guard upper >= 1 else { throw .argument(1, "interval is empty") }
            lua.push(Int.random(in: 1...upper))
        case 2:
            let lower = try lua.checkInteger(1)
            let upper = try lua.checkInteger(2)
            guard lower <= upper else { throw .argument(2, "interval is empty") }
            lua.push(Int.random(in: lower...upper))
        default:
            throw .message("wrong number of arguments")
        }
        return 1
    }

    /// Lua: node.setcpufreq(mhz) — 160 → 160, anything else → 80; returns it. Stored only.
    private func setcpufreq(_ lua: LuaState) throws(LuaError) -> Int32 {
        let requested = try lua.checkInteger(1)
        runtime.device.cpuFrequency = requested == 160 ? 160 : 80
        lua.push(runtime.device.cpuFrequency)
        return 1
    }

    /// Lua: node.getcpufreq()
    private func getcpufreq(_ lua: LuaState) -> Int32 {
        lua.push(runtime.device.cpuFrequency)
        return 1
    }

    /// Lua: node.stripdebug([level[, f]]) — a no-op on host bytecode that returns what the
    /// device returns (more-modules §1.4).
    private func stripdebug(_ lua: LuaState) throws(LuaError) -> Int32 {
        if lua.isNoneOrNil(1) {
            lua.push(stripLevel)
            return 1
        }
        let level = try lua.checkInteger(1)
        guard (1...3).contains(level) else {
            throw .argument(1, profile == .v2_2 ? "must in range 1-3" : "Invalid strip level")
        }
        if lua.isNoneOrNil(2) {
            stripLevel = level
            guard profile == .v3_0 else { return 0 }
            lua.push(level)
            return 1
        }
        // f: a Lua function or a stack level number.
        guard lua.isFunction(2) || lua.type(at: 2) == .number else {
            throw .argument(2, profile == .v2_2 ? "must be a Lua Function" : "not a valid function")
        }
        lua.push(0)
        return 1
    }

    /// Lua: node.egc.setmode(mode[, limit]) — checked and stored; the host's collector
    /// is Lua 5.3's own.
    private func egcSetmode(_ lua: LuaState) throws(LuaError) -> Int32 {
        let mode = try lua.checkInteger(1)
        let limit = try lua.optionalInteger(2, default: 0)
        guard [0, 1, 2, 4].contains(mode) else { throw .argument(1, "invalid mode") }
        if mode == 2 && limit == 0 { throw .argument(1, "limit must be non-zero") }
        egcMode = mode
        egcLimit = limit
        return 0
    }

    /// Lua: node.egc.meminfo() — `total_allocated, estimated_used` (plausible figures).
    private static func egcMeminfo(_ lua: LuaState) -> Int32 {
        lua.push(12_288)
        lua.push(11_264)
        return 2
    }

    /// Lua: node.setonerror([fn]) (3.0) — without a function the default handler returns.
    private func setonerror(_ lua: LuaState) -> Int32 {
        if let old = runtime.errorHandler { lua.unref(old) }
        runtime.errorHandler = lua.isFunction(1) ? lua.ref(at: 1) : nil
        return 0
    }
}
