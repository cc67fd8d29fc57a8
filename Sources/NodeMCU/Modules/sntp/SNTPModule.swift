import Board
import LuaBridge
import NIOCore

/// Lua: the `sntp` module (more-modules spec §8), both profiles. No packet leaves the
/// machine: after the board's simulated round trip (`Board.networkTime`, default
/// 100 ms) the host answers from its own clock, sets the board's RTC and calls
/// `ok_cb(sec, usec, server, info)`; injected failures end in `err_cb(code, text)`.
/// Followed: app/modules/sntp.c and docs/modules/sntp.md of the firmware.
public final class SNTPModule: LuaModule {
    public static let name = "sntp"

    unowned let runtime: Runtime
    private var sync: Sync?
    /// Servers of the last sync that did not time out.
    private var cachedServers: [String]?
    private var offset = 0

    /// A sync in progress (or an autorepeat waiting): keeps the process alive.
    final class Sync: RuntimeHandle {
        var servers: [String] = []
        var ok: LuaRef?
        var error: LuaRef?
        var autorepeat = false
        var running = false
        var task: ClockTask?
        func abortForReboot() { task?.cancel() }
    }

    public init(runtime: Runtime) { self.runtime = runtime }

    public func register(in table: inout LuaModuleTable) {
        table.function("sync") { [unowned self] lua throws(LuaError) in try sync(lua) }
        table.function("setoffset") { [unowned self] lua throws(LuaError) in
            offset = try lua.checkInteger(1)
            return 0
        }
        table.function("getoffset") { [unowned self] lua throws(LuaError) in
            lua.push(offset)
            return 1
        }
    }

    var defaultServers: [String] { (0...3).map { "\($0).nodemcu.pool.ntp.org" } }

    /// Lua: sntp.sync([server_ip], [callback], [errcallback], [autorepeat])
    private func sync(_ lua: LuaState) throws(LuaError) -> Int32 {
        // Each call first cancels a running autorepeat, even if it then raises.
        if let sync, !sync.running { stop(sync, on: lua) }
        if let sync, sync.running { throw .message("sync in progress") }
        var servers: [String] = []
        switch lua.type(at: 1) {
        case .string, .number:
            let name = lua.string(at: 1) ?? ""
            guard name.utf8.count < 128 else { throw .message("need <128 hostname") }
            servers = [name]
        case .table:
            var index: Int32 = 1
            while lua.rawGet(index, in: 1) != .nil_ {
                let name = lua.string(at: -1) ?? ""
                lua.pop()
                guard name.utf8.count < 128 else { throw .message("need <128 hostname") }
                servers.append(name)
                index += 1
            }
            lua.pop()
        default:
            servers = cachedServers ?? defaultServers
        }
        let sync = Sync()
        sync.servers = servers
        sync.autorepeat = !lua.isNoneOrNil(4)
        sync.ok = lua.isNoneOrNil(2) ? nil : lua.ref(at: 2)
        sync.error = lua.isNoneOrNil(3) ? nil : lua.ref(at: 3)
        self.sync = sync
        runtime.retain(sync)
        start(sync)
        return 0
    }

    private func start(_ sync: Sync) {
        sync.running = true
        let board = runtime.board
        board.networkTime.record(sync.servers)
        let generation = runtime.generation
        let failure = board.networkTime.failure
        // A dead pool fails after min(5, ⌈8/n⌉) rounds of 1 s per server.
        let n = max(sync.servers.count, 1)
        let delay: TimeAmount = failure == .noAnswer ? .seconds(Int64(min(5, (8 + n - 1) / n) * n)) : board.networkTime.delay
        sync.task = runtime.clock.schedule(in: delay) { [weak self, weak sync, unowned runtime] in
            guard let self, let sync, runtime.isCurrent(generation) else { return }
            finish(sync, failure: failure)
        }
    }

    private func finish(_ sync: Sync, failure: NetworkTime.Failure) {
        sync.running = false
        let lua = runtime.lua
        let board = runtime.board
        switch failure {
        case .none:
            cachedServers = sync.servers
            let (seconds, usec) = HostClock.epoch
            let rtcBefore = board.rtc.microseconds ?? 0
            let offsetMicros = seconds * 1_000_000 + usec - rtcBefore
            board.rtc.set(seconds: seconds, microseconds: usec)
            if let ok = sync.ok {
                lua.push(ok)
                pushNumber(Int(seconds), lua)
                pushNumber(Int(usec), lua)
                lua.push(serverAddress(sync.servers.first ?? ""))
                let delayMicros = Int(board.networkTime.delay.nanoseconds / 1000)
                lua.newTable(fieldCapacity: 8)
                var fields: [(String, Int)] = abs(offsetMicros) >= 256_000_000
                    ? [("offset_s", Int(offsetMicros / 1_000_000))] : [("offset_us", Int(offsetMicros))]
                if delayMicros > 0 { fields.append(("delay_us", delayMicros)) }
                fields += [("root_delay_us", 0), ("root_dispersion_us", 0), ("root_maxerr_us", delayMicros / 2),
                           ("stratum", 1), ("leap", 0), ("pending_leap", 0)]
                for (key, value) in fields {
                    pushNumber(value, lua)
                    lua.setField(key, in: -2)
                }
                runtime.callback(.task, arguments: 4)
            }
        case .dns, .noAnswer:
            let singleName = sync.servers.count == 1 && !isIPv4(sync.servers[0])
            let code = failure == .noAnswer || (runtime.profile == .v2_2 && singleName) ? 4 : 1
            if code == 4 { cachedServers = nil }
            if let error = sync.error {
                lua.push(error)
                pushNumber(code, lua)
                if code == 1 { lua.push(sync.servers.first ?? "") } else { lua.pushNil() }
                runtime.callback(.task, arguments: 2)
            }
        }
        guard self.sync === sync else { return }
        if sync.autorepeat && !runtime.halted {
            let generation = runtime.generation
            sync.task = runtime.clock.schedule(in: .seconds(1000)) { [weak self, weak sync, unowned runtime] in
                guard let self, let sync, runtime.isCurrent(generation), self.sync === sync else { return }
                start(sync)
            }
        } else {
            stop(sync, on: lua)
        }
    }

    private func stop(_ sync: Sync, on lua: LuaState) {
        sync.task?.cancel()
        if let ok = sync.ok { lua.unref(ok) }
        if let error = sync.error { lua.unref(error) }
        sync.ok = nil
        sync.error = nil
        if self.sync === sync { self.sync = nil }
        runtime.release(sync)
    }

    private func pushNumber(_ value: Int, _ lua: LuaState) {
        if runtime.profile == .v2_2 { lua.push(Double(value)) } else { lua.push(value) }
    }

    private func isIPv4(_ text: String) -> Bool { WiFiModule.parseIPv4(text) != nil }

    /// The address reported for `server`: an IP literal as given, a name as its
    /// `--remap` target if any, else 192.0.2.1 (host choice).
    private func serverAddress(_ server: String) -> String {
        if isIPv4(server) { return server }
        let mapped = runtime.options.remap.apply(host: server, port: 123).host
        return mapped != server && isIPv4(mapped) ? mapped : "192.0.2.1"
    }
}
