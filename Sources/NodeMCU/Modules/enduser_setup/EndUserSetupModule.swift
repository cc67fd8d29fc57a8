import Board
import LuaBridge
import NIOCore

/// Lua: the `enduser_setup` module (more-modules spec §11), both profiles, as if the
/// station were already configured: `start` switches to STATIONAP (unless manual),
/// checks every 3 s whether the station has an IP and then calls `onConnected()`, and
/// 10 s later stops (mode STATION). No AP, captive DNS or HTTP portal. `onDebug` is
/// never called (the firmware compiles its debug output out). Followed:
/// app/modules/enduser_setup.c and docs/modules/enduser_setup.md of the firmware.
public final class EndUserSetupModule: LuaModule {
    public static let name = "enduser_setup"

    unowned let runtime: Runtime
    private var manual = false
    private var session: Session?

    /// A running portal: keeps the process alive until it stops.
    final class Session: RuntimeHandle {
        var onConnected: LuaRef?
        var onError: LuaRef?
        var onDebug: LuaRef?
        var task: ClockTask?
        var connected = false
        func abortForReboot() { task?.cancel() }
    }

    public init(runtime: Runtime) { self.runtime = runtime }

    public func register(in table: inout LuaModuleTable) {
        table.function("start") { [unowned self] lua throws(LuaError) in start(lua) }
        table.function("stop") { [unowned self] lua throws(LuaError) in stop(lua) }
        table.function("manual") { [unowned self] lua throws(LuaError) in manual(lua) }
    }

    /// Lua: enduser_setup.start([ssid,] [onConnected], [onError], [onDebug]) — `ssid`
    /// (a string or number first argument) in 3.0 only; callbacks: any non-nil value
    /// is stored. A second start while running stops the portal silently.
    private func start(_ lua: LuaState) -> Int32 {
        if session != nil {
            finish(on: lua, runPendingCallback: false)
            return 0
        }
        var first: Int32 = 1
        if runtime.profile == .v3_0 && lua.isStringLike(1) { first = 2 }
        let session = Session()
        func ref(_ index: Int32) -> LuaRef? { lua.isNoneOrNil(index) ? nil : lua.ref(at: index) }
        session.onConnected = ref(first)
        session.onError = ref(first + 1)
        session.onDebug = ref(first + 2)
        self.session = session
        runtime.retain(session)
        if !manual { runtime.board.wifi.setMode(.stationAP, save: false) }
        scheduleCheck(session)
        return 0
    }

    private func scheduleCheck(_ session: Session) {
        let generation = runtime.generation
        session.task = runtime.clock.schedule(in: .seconds(3)) { [weak self, weak session, unowned runtime] in
            guard let self, let session, runtime.isCurrent(generation), self.session === session else { return }
            guard runtime.board.wifi.status == .gotIP else {
                scheduleCheck(session)
                return
            }
            session.connected = true
            callConnected(session)
            guard !manual else { return }
            session.task = runtime.clock.schedule(in: .seconds(10)) { [weak self, weak session] in
                guard let self, let session, runtime.isCurrent(generation), self.session === session else { return }
                finish(on: runtime.lua, runPendingCallback: false)
            }
        }
    }

    private func callConnected(_ session: Session) {
        guard let callback = session.onConnected else { return }
        session.onConnected = nil
        let lua = runtime.lua
        lua.push(callback)
        lua.unref(callback)
        runtime.callback(.task, arguments: 0)
    }

    private func finish(on lua: LuaState, runPendingCallback: Bool) {
        guard let session else { return }
        self.session = nil
        session.task?.cancel()
        if !manual { runtime.board.wifi.setMode(.station, save: false) }
        if runPendingCallback && session.connected { callConnected(session) }
        for ref in [session.onConnected, session.onError, session.onDebug].compactMap({ $0 }) { lua.unref(ref) }
        runtime.release(session)
    }

    /// Lua: enduser_setup.stop() — a connection that succeeded but whose `onConnected`
    /// has not run yet runs it now.
    private func stop(_ lua: LuaState) -> Int32 {
        finish(on: lua, runPendingCallback: true)
        return 0
    }

    /// Lua: enduser_setup.manual([on]) → the setting (default false)
    private func manual(_ lua: LuaState) -> Int32 {
        if !lua.isNoneOrNil(1) { manual = lua.boolean(at: 1) }
        lua.push(manual)
        return 1
    }
}
