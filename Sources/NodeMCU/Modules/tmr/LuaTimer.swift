import Board
import LuaBridge
import NIOCore

/// Lua: a `tmr.timer` — a dynamic timer object, or one of 2.2's static timers 0–6.
///
/// Its methods are also 2.2's static functions (`tmr.alarm(id, …)`): in both forms the
/// timer is at stack index 1 and the arguments start at index 2 (spec §3).
public final class LuaTimer: LuaHandle {
    enum Event: Int, LuaHandleEvent {
        case alarm
    }
    enum State { case unregistered, idle, running }
    enum Mode: Int { case single = 0, auto = 1, semi = 2 }

    /// The largest interval the firmware accepts, in ms.
    static let maxInterval = 6_870_947
    static let rangeMessage = "Range: 1-6870947"

    @exclusivity(unchecked) private(set) var state = State.unregistered
    @exclusivity(unchecked) private(set) var interval = 0
    @exclusivity(unchecked) private(set) var mode = Mode.single
    /// 2.2's static timers pass their id to the callback and have no userdata.
    let staticID: Int?
    @exclusivity(unchecked) private var scheduled: ClockTask?
    @exclusivity(unchecked) private var deadline = NIODeadline.uptimeNanoseconds(0)

    init(runtime: Runtime, staticID: Int? = nil) {
        self.staticID = staticID
        super.init(runtime: runtime, callbackSlots: 1)
    }

    /// The Lua methods, shared with 2.2's static API.
    static func methods(profile: FirmwareProfile) -> [(String, LuaObjectType<LuaTimer>.Method)] {
        [
            ("register", { t, lua throws(LuaError) in try t.register(lua) }),
            ("alarm", { t, lua throws(LuaError) in try t.alarm(lua) }),
            ("start", { t, lua throws(LuaError) in try t.start(lua, profile: profile) }),
            ("stop", { t, lua throws(LuaError) in t.stop(lua) }),
            ("unregister", { t, lua throws(LuaError) in t.unregister(lua) }),
            ("interval", { t, lua throws(LuaError) in try t.interval(lua) }),
            ("state", { t, lua throws(LuaError) in t.state(lua) }),
        ]
    }

    // MARK: Lua methods

    /// Lua: t:register(interval_ms, mode, fn)
    func register(_ lua: LuaState) throws(LuaError) -> Int32 {
        let ms = try lua.checkInteger(2)
        let rawMode = try lua.checkInteger(3)
        guard (1...Self.maxInterval).contains(ms) else { throw .argument(2, Self.rangeMessage) }
        guard let mode = Mode(rawValue: rawMode) else { throw .argument(3, "Invalid mode") }
        guard lua.isFunction(4) else { throw .argument(4, "Must be function") }
        disarm(to: .idle, on: lua)
        setCallback(Event.alarm, from: 4, on: lua)
        interval = ms
        self.mode = mode
        state = .idle
        return 0
    }

    /// Lua: t:alarm(interval_ms, mode, fn) — register and start; returns true.
    func alarm(_ lua: LuaState) throws(LuaError) -> Int32 {
        _ = try register(lua)
        arm(on: lua)
        lua.push(true)
        return 1
    }

    /// Lua: t:start() (2.2) / t:start([restart]) (3.0) — returns whether it started.
    func start(_ lua: LuaState, profile: FirmwareProfile) throws(LuaError) -> Int32 {
        var restart = false
        if profile == .v3_0 {
            switch lua.type(at: 2) {
            case .none, .nil_: break
            case .boolean: restart = lua.boolean(at: 2)
            default: throw .argument(2, "boolean expected")
            }
        }
        let starts = state == .idle || (state == .running && restart)
        if starts { arm(on: lua) }
        lua.push(starts)
        return 1
    }

    /// Lua: t:stop() — returns whether it was running; the registration stays.
    func stop(_ lua: LuaState) -> Int32 {
        let wasRunning = state == .running
        if wasRunning { disarm(to: .idle, on: lua) }
        lua.push(wasRunning)
        return 1
    }

    /// Lua: t:unregister()
    func unregister(_ lua: LuaState) -> Int32 {
        disarm(to: .unregistered, on: lua)
        clearCallback(Event.alarm, on: lua)
        return 0
    }

    /// Lua: t:interval(interval_ms) — a running timer restarts from now.
    func interval(_ lua: LuaState) throws(LuaError) -> Int32 {
        let ms = try lua.checkInteger(2)
        guard (1...Self.maxInterval).contains(ms) else { throw .argument(2, Self.rangeMessage) }
        guard state != .unregistered else { return 0 }
        interval = ms
        if state == .running { arm(on: lua) }
        return 0
    }

    /// Lua: t:state() — `running, mode`, or nil when unregistered.
    func state(_ lua: LuaState) -> Int32 {
        guard state != .unregistered else {
            lua.pushNil()
            return 1
        }
        lua.push(state == .running)
        lua.push(mode.rawValue)
        return 2
    }

    // MARK: Arming and expiry

    /// Arms (or re-arms from now) a registered timer; it holds itself while armed.
    private func arm(on lua: LuaState) {
        scheduled?.cancel()
        state = .running
        deadline = runtime.clock.now + .milliseconds(Int64(interval))
        scheduleExpiry()
        if staticID == nil { hold(userdataAt: 1, on: lua) } else { holdWithoutReference() }
    }

    private func scheduleExpiry() {
        scheduled = schedule(at: deadline) { [weak self] in self?.expire() }
    }

    /// Stops the timer and lets it be collected; the callback stays.
    private func disarm(to newState: State, on lua: LuaState) {
        scheduled?.cancel()
        scheduled = nil
        if state == .running || newState == .unregistered { state = newState }
        unhold(on: lua)
    }

    private func expire() {
        guard state == .running, let callback = callback(Event.alarm) else { return }
        let lua = runtime.lua
        lua.push(callback)
        if let staticID {
            lua.push(staticID)
        } else if let selfRef {
            lua.push(selfRef)
        } else {
            lua.pushNil()
        }
        runtime.emit(.timerFired)
        if runtime.options.trace {
            runtime.diagnostic("trace: tmr \(staticID.map(String.init) ?? "timer") fired (\(interval) ms, mode \(mode.rawValue))")
        }
        switch mode {
        case .single:
            // Unregistered before its callback runs (spec §3.3).
            _ = unregister(lua)
        case .semi:
            disarm(to: .idle, on: lua)
        case .auto:
            // Periodic from expiry to expiry; a late loop does not queue catch-ups.
            deadline = max(deadline + .milliseconds(Int64(interval)), runtime.clock.now)
            scheduleExpiry()
        }
        runtime.callback(.task, arguments: 1)
    }

    // MARK: Teardown

    public override func abortForReboot() {
        scheduled?.cancel()
        scheduled = nil
        super.abortForReboot()
    }

    /// An unreferenced timer is unregistered.
    public override func dispose(on lua: LuaState) {
        scheduled?.cancel()
        scheduled = nil
        state = .unregistered
        super.dispose(on: lua)
    }
}
