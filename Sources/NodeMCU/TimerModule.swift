import LuaBridge
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// A `tmr` timer: a dynamic `tmr.timer` object or one of 2.2's static timers 0–6.
public final class LuaTimer: RuntimeHandle {
    enum State { case unregistered, idle, running }
    public enum Mode: Int { case single = 0, auto = 1, semi = 2 }

    var state = State.unregistered
    var interval = 0
    var mode = Mode.single
    var callback: LuaRef?
    /// The timer's own userdata while armed, so an unreferenced armed timer lives
    /// (bridge rule 4). Static timers have none and pass their id instead.
    var selfRef: LuaRef?
    let staticID: Int?
    var scheduled: Scheduled<Void>?
    var deadline = NIODeadline.uptimeNanoseconds(0)
    unowned let module: TimerModule

    init(module: TimerModule, staticID: Int? = nil) {
        self.module = module
        self.staticID = staticID
    }

    public func abortForReboot() {
        scheduled?.cancel()
        scheduled = nil
    }
}

/// Lua: the `tmr` module (behaviour spec §3), both profiles.
public final class TimerModule {
    /// The largest interval the firmware accepts, in ms.
    static let maxInterval = 6_870_947
    static let rangeMessage = "Range: 1-6870947"

    unowned let runtime: Runtime
    let timerType: LuaObjectType<LuaTimer>
    /// 2.2's static timers 0–6, created on first use; never collected.
    private var staticTimers: [Int: LuaTimer] = [:]
    private var watchdog: Watchdog?

    init(runtime: Runtime) {
        self.runtime = runtime
        let lua = runtime.lua
        let profile = runtime.profile
        var methods: [(String, LuaFunction.Body)] = []
        // Methods see the timer at index 1 and its arguments from index 2 on.
        unowned var module: TimerModule!
        for (name, body) in TimerModule.operations(profile: profile) {
            methods.append((name, { lua throws(LuaError) in
                try body(module, lua, try module.timerType.check(1, on: lua))
            }))
        }
        timerType = LuaObjectType(name: "tmr.timer", in: lua, methods: methods) { lua, timer in
            timer.module.dispose(timer, lua: lua)
        }
        module = self

        lua.newTable()
        lua.setInteger("ALARM_SINGLE", LuaTimer.Mode.single.rawValue)
        lua.setInteger("ALARM_AUTO", LuaTimer.Mode.auto.rawValue)
        lua.setInteger("ALARM_SEMI", LuaTimer.Mode.semi.rawValue)
        lua.setFunction("create") { [unowned self] lua throws(LuaError) in
            timerType.push(LuaTimer(module: self), on: lua)
            return 1
        }
        lua.setFunction("now") { [unowned self] lua throws(LuaError) in
            lua.push(Int(microsecondsSinceBoot & 0x7FFF_FFFF))
            return 1
        }
        lua.setFunction("time") { [unowned self] lua throws(LuaError) in
            lua.push(Int(microsecondsSinceBoot / 1_000_000))
            return 1
        }
        lua.setFunction("delay") { lua throws(LuaError) in
            let us = try lua.checkInteger(1)
            if us <= 0 {
                throw profile == .v2_2 ? .message("wrong arg range") : .argument(1, "wrong arg range")
            }
            TimerModule.busyWait(microseconds: us)
            return 0
        }
        lua.setFunction("wdclr") { _ throws(LuaError) in 0 }
        lua.setFunction("softwd") { [unowned self] lua throws(LuaError) in
            let seconds = try lua.checkInteger(1)
            let arms = profile == .v2_2 ? seconds > 0 : seconds >= 0
            setWatchdog(seconds: arms ? seconds : nil)
            return 0
        }
        if profile == .v3_0 {
            lua.setFunction("ccount") { lua throws(LuaError) in
                // An 80 MHz cycle counter, wrapping at 32 bits.
                lua.push(Int(UInt32(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds * 2 / 25)))
                return 1
            }
        }
        if profile == .v2_2 {
            // Static API: the first argument is a timer id 0–6 or a timer object;
            // not method calls, so argument numbers include it.
            for (name, body) in TimerModule.operations(profile: profile) {
                lua.setFunction(name) { [unowned self] lua throws(LuaError) in
                    try body(self, lua, try staticTimer(lua))
                }
            }
        }
        lua.setGlobal("tmr")
    }

    private var microsecondsSinceBoot: Int64 {
        (runtime.eventLoop.now - runtime.bootTime).nanoseconds / 1000
    }

    private func staticTimer(_ lua: LuaState) throws(LuaError) -> LuaTimer {
        if let timer = timerType.object(at: 1, on: lua) { return timer }
        guard lua.type(at: 1) == .number, let id = lua.integer(at: 1) else {
            throw .argument(1, "timer object or numerical ID expected")
        }
        guard (0...6).contains(id) else { throw .argument(1, "invalid timer index") }
        if let timer = staticTimers[id] { return timer }
        let timer = LuaTimer(module: self, staticID: id)
        staticTimers[id] = timer
        return timer
    }

    // MARK: Operations shared by methods and the static API

    typealias Operation = (TimerModule, LuaState, LuaTimer) throws(LuaError) -> Int32

    static func operations(profile: FirmwareProfile) -> [(String, Operation)] {
        [
            ("register", { m, lua, t throws(LuaError) in try m.register(lua, t); return 0 }),
            ("alarm", { m, lua, t throws(LuaError) in
                try m.register(lua, t)
                m.arm(t, lua: lua)
                lua.push(true)
                return 1
            }),
            ("start", { m, lua, t throws(LuaError) in lua.push(try m.start(lua, t, profile: profile)); return 1 }),
            ("stop", { m, lua, t throws(LuaError) in
                let wasRunning = t.state == .running
                if wasRunning { m.disarm(t, to: .idle) }
                lua.push(wasRunning)
                return 1
            }),
            ("unregister", { m, lua, t throws(LuaError) in m.unregister(t, lua: lua); return 0 }),
            ("interval", { m, lua, t throws(LuaError) in
                let ms = try lua.checkInteger(2)
                guard (1...maxInterval).contains(ms) else { throw .argument(2, rangeMessage) }
                guard t.state != .unregistered else { return 0 }
                t.interval = ms
                if t.state == .running { m.arm(t, lua: lua) }
                return 0
            }),
            ("state", { _, lua, t throws(LuaError) in
                guard t.state != .unregistered else {
                    lua.pushNil()
                    return 1
                }
                lua.push(t.state == .running)
                lua.push(t.mode.rawValue)
                return 2
            }),
        ]
    }

    /// Lua: t:register(ms, mode, fn) — arguments from stack index 2.
    private func register(_ lua: LuaState, _ timer: LuaTimer) throws(LuaError) {
        let ms = try lua.checkInteger(2)
        let rawMode = try lua.checkInteger(3)
        guard (1...TimerModule.maxInterval).contains(ms) else { throw .argument(2, TimerModule.rangeMessage) }
        guard let mode = LuaTimer.Mode(rawValue: rawMode) else { throw .argument(3, "Invalid mode") }
        guard lua.isFunction(4) else { throw .argument(4, "Must be function") }
        disarm(timer, to: .idle)
        if let old = timer.callback { lua.unref(old) }
        timer.callback = lua.ref(at: 4)
        timer.interval = ms
        timer.mode = mode
        timer.state = .idle
    }

    private func start(_ lua: LuaState, _ timer: LuaTimer, profile: FirmwareProfile) throws(LuaError) -> Bool {
        var restart = false
        if profile == .v3_0 {
            switch lua.type(at: 2) {
            case .none, .nil_: break
            case .boolean: restart = lua.boolean(at: 2)
            default: throw .argument(2, "boolean expected")
            }
        }
        switch timer.state {
        case .unregistered: return false
        case .running where !restart: return false
        case .idle, .running:
            arm(timer, lua: lua)
            return true
        }
    }

    // MARK: Arming and expiry

    /// Arms (or re-arms from now) a registered timer; the userdata at index 1,
    /// if it is the timer's own, becomes its self reference.
    func arm(_ timer: LuaTimer, lua: LuaState) {
        timer.scheduled?.cancel()
        if timer.staticID == nil, timer.selfRef == nil {
            timer.selfRef = lua.ref(at: 1)
        }
        timer.state = .running
        timer.deadline = runtime.eventLoop.now + .milliseconds(Int64(timer.interval))
        schedule(timer)
        runtime.retain(timer)
    }

    private func schedule(_ timer: LuaTimer) {
        let generation = runtime.generation
        timer.scheduled = runtime.eventLoop.assumeIsolated().scheduleTask(deadline: timer.deadline) { [weak timer] in
            guard let timer, self.runtime.isCurrent(generation) else { return }
            self.expire(timer)
        }
    }

    /// Stops a timer and lets it be collected; the callback stays unless unregistered.
    func disarm(_ timer: LuaTimer, to state: LuaTimer.State) {
        timer.scheduled?.cancel()
        timer.scheduled = nil
        if timer.state == .running || state == .unregistered { timer.state = state }
        if let ref = timer.selfRef {
            runtime.lua.unref(ref)
            timer.selfRef = nil
        }
        runtime.release(timer)
    }

    func unregister(_ timer: LuaTimer, lua: LuaState) {
        disarm(timer, to: .unregistered)
        if let callback = timer.callback {
            lua.unref(callback)
            timer.callback = nil
        }
    }

    private func expire(_ timer: LuaTimer) {
        guard timer.state == .running, let callback = timer.callback else { return }
        let lua = runtime.lua
        lua.push(callback)
        if let id = timer.staticID {
            lua.push(id)
        } else if let selfRef = timer.selfRef {
            lua.push(selfRef)
        } else {
            lua.pushNil()
        }
        if runtime.options.trace {
            Console.err("nodemcu-host: trace: tmr \(timer.staticID.map(String.init) ?? "timer") fired (\(timer.interval) ms, mode \(timer.mode.rawValue))\n")
        }
        switch timer.mode {
        case .single:
            // Unregistered before its callback runs (spec §3.3).
            unregister(timer, lua: lua)
        case .semi:
            disarm(timer, to: .idle)
        case .auto:
            // Periodic from expiry to expiry; a late loop does not queue catch-ups.
            timer.deadline = max(timer.deadline + .milliseconds(Int64(timer.interval)), runtime.eventLoop.now)
            schedule(timer)
        }
        runtime.callback(.task, arguments: 1)
    }

    /// `__gc` of a timer userdata: an unreferenced timer is unregistered.
    func dispose(_ timer: LuaTimer, lua: LuaState) {
        timer.scheduled?.cancel()
        timer.scheduled = nil
        timer.state = .unregistered
        if let callback = timer.callback { lua.unref(callback) }
        timer.callback = nil
        runtime.release(timer)
    }

    // MARK: tmr.delay and tmr.softwd

    static func busyWait(microseconds: Int) {
        let end = NIODeadline.now() + .microseconds(Int64(microseconds))
        while NIODeadline.now() < end {}
    }

    /// The software watchdog: expiry reboots the device (spec §3.5, §1.3).
    final class Watchdog: RuntimeHandle {
        var scheduled: Scheduled<Void>?
        func abortForReboot() { scheduled?.cancel() }
    }

    private func setWatchdog(seconds: Int?) {
        if let watchdog {
            watchdog.scheduled?.cancel()
            runtime.release(watchdog)
            self.watchdog = nil
        }
        guard let seconds else { return }
        let watchdog = Watchdog()
        let generation = runtime.generation
        // Ticked once a second on the device: expiry within about a second of `seconds`.
        watchdog.scheduled = runtime.eventLoop.assumeIsolated().scheduleTask(in: .seconds(Int64(max(seconds, 1)))) {
            guard self.runtime.isCurrent(generation) else { return }
            self.runtime.reboot(reason: "tmr.softwd expired")
        }
        self.watchdog = watchdog
        runtime.retain(watchdog)
    }
}
