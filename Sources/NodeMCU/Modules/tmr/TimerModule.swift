import Board
import LuaBridge
import NIOCore

/// Lua: the `tmr` module (behaviour spec §3), both profiles; the timer objects are
/// `LuaTimer`s.
public final class TimerModule: LuaModule {
    public static let name = "tmr"

    unowned let runtime: Runtime
    let timerType: LuaObjectType<LuaTimer>
    /// 2.2's static timers 0–6, created on first use; never collected.
    private var staticTimers: [Int: LuaTimer] = [:]
    private var watchdog: Watchdog?

    public init(runtime: Runtime) {
        self.runtime = runtime
        timerType = LuaObjectType(
            name: "tmr.timer", in: runtime.lua, methods: LuaTimer.methods(profile: runtime.profile)
        ) { lua, timer in timer.dispose(on: lua) }
    }

    public func register(in table: inout LuaModuleTable) {
        let profile = runtime.profile
        table.integer("ALARM_SINGLE", LuaTimer.Mode.single.rawValue)
        table.integer("ALARM_AUTO", LuaTimer.Mode.auto.rawValue)
        table.integer("ALARM_SEMI", LuaTimer.Mode.semi.rawValue)
        table.function("create") { [unowned self] lua throws(LuaError) in create(lua) }
        table.function("now") { [unowned self] lua throws(LuaError) in now(lua) }
        table.function("time") { [unowned self] lua throws(LuaError) in time(lua) }
        table.function("delay") { [unowned self] lua throws(LuaError) in try Self.delay(lua, profile: profile, clock: runtime.clock) }
        table.function("wdclr") { lua throws(LuaError) in Self.wdclr(lua) }
        table.function("softwd") { [unowned self] lua throws(LuaError) in try softwd(lua) }
        if profile == .v3_0 {
            table.function("ccount") { [unowned self] lua throws(LuaError) in ccount(lua) }
        }
        if profile == .v2_2 {
            // The static API: the first argument is a timer id 0–6 or a timer object.
            for (name, method) in LuaTimer.methods(profile: profile) {
                table.function(name) { [unowned self] lua throws(LuaError) in
                    try method(try staticTimer(lua), lua)
                }
            }
        }
    }

    // MARK: Functions

    /// Lua: tmr.create()
    private func create(_ lua: LuaState) -> Int32 {
        timerType.push(LuaTimer(runtime: runtime), on: lua)
        return 1
    }

    /// Lua: tmr.now() — µs since boot, 31 bits as on the device.
    private func now(_ lua: LuaState) -> Int32 {
        lua.push(Int(microsecondsSinceBoot & 0x7FFF_FFFF))
        return 1
    }

    /// Lua: tmr.time() — seconds since boot.
    private func time(_ lua: LuaState) -> Int32 {
        lua.push(Int(microsecondsSinceBoot / 1_000_000))
        return 1
    }

    /// Lua: tmr.delay(us) — busy-waits; nothing else runs meanwhile. A delay longer than
    /// the watchdog leaves ends in the watchdog reset when the watchdog would bite, as on
    /// the device; Ctrl-C (REPL) ends it too. Under virtual time device time moves on by
    /// `us` at once instead (the watchdog still bites if `us` is longer than it leaves).
    private static func delay(_ lua: LuaState, profile: FirmwareProfile, clock: DeviceClock) throws(LuaError) -> Int32 {
        let us = try lua.checkInteger(1)
        if us <= 0 {
            throw profile == .v2_2 ? .message("wrong arg range") : .argument(1, "wrong arg range")
        }
        if clock.isVirtual {
            // Saturating: a delay of 2^62 µs is "longer than any watchdog", not an overflow.
            let (product, overflow) = Int64(clamping: us).multipliedReportingOverflow(by: 1000)
            let nanoseconds = overflow ? Int64.max : product
            if let remaining = lua.watchdogRemaining, nanoseconds > remaining {
                clock.advance(by: .nanoseconds(remaining))
                lua.trip(.watchdog)
            } else {
                clock.advance(by: .nanoseconds(nanoseconds))
                lua.chargeWatchdog(nanoseconds: nanoseconds)
            }
            return 0
        }
        let start = NIODeadline.now()
        var end = start + .microseconds(Int64(clamping: us))
        var bites = false
        if let remaining = lua.watchdogRemaining, start + .nanoseconds(remaining) < end {
            end = start + .nanoseconds(remaining)
            bites = true
        }
        while NIODeadline.now() < end {
            if LuaState.interruptPending {
                lua.trip(.interrupt)
                return 0
            }
        }
        lua.watchdogSpent()
        if bites { lua.trip(.watchdog) }
        return 0
    }

    /// Lua: tmr.wdclr() — feeds the device watchdog (the firmware calls
    /// system_soft_wdt_feed).
    private static func wdclr(_ lua: LuaState) -> Int32 {
        lua.feedWatchdog()
        return 0
    }

    /// Lua: tmr.ccount() (3.0) — an 80 MHz cycle counter, wrapping at 32 bits.
    private func ccount(_ lua: LuaState) -> Int32 {
        lua.push(Int(UInt32(truncatingIfNeeded: runtime.clock.now.uptimeNanoseconds * 2 / 25)))
        return 1
    }

    /// Lua: tmr.softwd(seconds) — 2.2 arms for seconds > 0, 3.0 for seconds >= 0;
    /// anything else disarms.
    private func softwd(_ lua: LuaState) throws(LuaError) -> Int32 {
        let seconds = try lua.checkInteger(1)
        let arms = runtime.profile == .v2_2 ? seconds > 0 : seconds >= 0
        setWatchdog(seconds: arms ? seconds : nil)
        return 0
    }

    private var microsecondsSinceBoot: Int64 {
        (runtime.clock.now - runtime.bootTime).nanoseconds / 1000
    }

    /// The timer a 2.2 static call names at index 1: an id 0–6 or a timer object.
    private func staticTimer(_ lua: LuaState) throws(LuaError) -> LuaTimer {
        if let timer = timerType.object(at: 1, on: lua) { return timer }
        guard lua.type(at: 1) == .number, let id = lua.integer(at: 1) else {
            throw .argument(1, "timer object or numerical ID expected")
        }
        guard (0...6).contains(id) else { throw .argument(1, "invalid timer index") }
        if let timer = staticTimers[id] { return timer }
        let timer = LuaTimer(runtime: runtime, staticID: id)
        staticTimers[id] = timer
        return timer
    }

    // MARK: tmr.softwd

    /// The software watchdog: expiry reboots the device (spec §3.5, §1.3).
    final class Watchdog: RuntimeHandle {
        var scheduled: ClockTask?
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
        watchdog.scheduled = runtime.clock.schedule(in: .seconds(Int64(max(seconds, 1)))) { [unowned runtime] in
            guard runtime.isCurrent(generation) else { return }
            runtime.reboot(reason: "tmr.softwd expired")
        }
        self.watchdog = watchdog
        runtime.retain(watchdog)
    }
}
