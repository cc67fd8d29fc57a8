import Board
import LuaBridge
import NIOCore

/// Lua: the `rtctime` module (more-modules spec §7), both profiles, on the board's RTC
/// (`Board.rtc`: unset until set, never backwards, rate-corrected, kept across
/// `rtctime.dsleep` only). Followed: app/modules/rtctime.c, app/include/rtc/rtctime*.h
/// and docs/modules/rtctime.md of the firmware.
public final class RTCTimeModule: LuaModule {
    public static let name = "rtctime"

    unowned let runtime: Runtime
    var rtc: RealTimeClock { runtime.board.rtc }

    public init(runtime: Runtime) { self.runtime = runtime }

    public func register(in table: inout LuaModuleTable) {
        table.function("set") { [unowned self] lua throws(LuaError) in try set(lua) }
        table.function("get") { [unowned self] lua throws(LuaError) in get(lua) }
        table.function("adjust_delta") { [unowned self] lua throws(LuaError) in try adjustDelta(lua) }
        table.function("dsleep") { [unowned self] lua throws(LuaError) in try dsleep(lua) }
        table.function("dsleep_aligned") { [unowned self] lua throws(LuaError) in try dsleepAligned(lua) }
        table.function("epoch2cal") { lua throws(LuaError) in try Self.epoch2cal(lua) }
    }

    /// Lua: rtctime.set([sec[, usec[, rate]]]) — `sec` is required in 2.2; in 3.0
    /// without it only `rate` is applied.
    private func set(_ lua: LuaState) throws(LuaError) -> Int32 {
        let rate = lua.isNoneOrNil(3) ? nil : Int32(truncatingIfNeeded: try lua.checkInteger(3))
        if runtime.profile == .v3_0 && lua.isNoneOrNil(1) {
            if let rate { rtc.setRate(rate) }
            return 0
        }
        let seconds = try lua.checkInteger(1)
        let usec = try lua.optionalInteger(2, default: 0)
        // Both uint32_t in the firmware (a huge usec overflowed the microsecond count here).
        rtc.set(
            seconds: Int64(UInt32(truncatingIfNeeded: seconds)),
            microseconds: Int64(UInt32(truncatingIfNeeded: usec)), rate: rate)
        return 0
    }

    /// Lua: rtctime.get() → sec, usec, rate (0, 0, 0 while unset); 2.2 numbers, 3.0 integers
    private func get(_ lua: LuaState) -> Int32 {
        let (seconds, usec) = rtc.time
        let rate = rtc.isSet ? Int(rtc.rate) : 0
        if runtime.profile == .v2_2 {
            lua.push(Double(seconds))
            lua.push(Double(usec))
            lua.push(Double(rate))
        } else {
            lua.push(Int(seconds))
            lua.push(Int(usec))
            lua.push(rate)
        }
        return 3
    }

    /// Lua: rtctime.adjust_delta(us) → ((us · (2³² + rate)) mod 2⁶⁴) >> 32, 32 bits
    private func adjustDelta(_ lua: LuaState) throws(LuaError) -> Int32 {
        let us = UInt64(bitPattern: Int64(try lua.checkInteger(1)))
        let factor = UInt64(bitPattern: (1 << 32) + Int64(rtc.rate))
        let adjusted = (us &* factor) >> 32
        lua.push(Int(UInt32(truncatingIfNeeded: adjusted)))
        return 1
    }

    /// Lua: rtctime.dsleep(us[, option]) — a simulated restart `us` later that keeps the RTC
    private func dsleep(_ lua: LuaState) throws(LuaError) -> Int32 {
        let us = try lua.checkInteger(1)
        let option = try lua.optionalInteger(2, default: 0)
        guard (0...4).contains(option) else { throw .message("unknown sleep option") }
        sleep(microseconds: Int64(UInt32(truncatingIfNeeded: us)))
        return 0
    }

    /// Lua: rtctime.dsleep_aligned(aligned_us, min_us[, option]) — sleeps to the next
    /// multiple of `aligned_us` on the RTC timeline at least `min_us` away
    private func dsleepAligned(_ lua: LuaState) throws(LuaError) -> Int32 {
        let align = Int64(UInt32(truncatingIfNeeded: try lua.checkInteger(1)))
        let minimum = Int64(UInt32(truncatingIfNeeded: try lua.checkInteger(2)))
        let option = try lua.optionalInteger(3, default: 0)
        guard (0...4).contains(option) else { throw .message("unknown sleep option") }
        guard let now = rtc.microseconds, now >= 1_000_000 else { throw .message("time not available, unable to align") }
        let earliest = now + minimum
        let target = align > 0 ? ((earliest + align - 1) / align) * align : earliest
        sleep(microseconds: target - now)
        return 0
    }

    private func sleep(microseconds: Int64) {
        runtime.reboot(reason: "rtctime.dsleep", kind: .rtcDeepSleepWake, after: .microseconds(max(microseconds, 1)))
    }

    /// Lua: rtctime.epoch2cal(timestamp) → {year, mon, day, hour, min, sec, yday, wday}
    private static func epoch2cal(_ lua: LuaState) throws(LuaError) -> Int32 {
        let t = try lua.checkInteger(1)
        guard t >= 0 else { throw .argument(1, "wrong arg range") }
        let c = Calendar.utc(Int64(t))
        lua.newTable(fieldCapacity: 8)
        for (key, value) in [("year", c.year), ("mon", c.month), ("day", c.day), ("hour", c.hour), ("min", c.minute),
                             ("sec", c.second), ("yday", c.yearDay), ("wday", c.weekDay + 1)] {
            lua.push(value)
            lua.setField(key, in: -2)
        }
        return 1
    }
}

/// A UTC calendar date from epoch seconds (for `rtctime.epoch2cal` and `cron`).
struct Calendar: Equatable {
    var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
    /// 1…366.
    var yearDay: Int
    /// 0 = Sunday.
    var weekDay: Int

    static func utc(_ t: Int64) -> Calendar {
        let days = Int(t / 86_400)
        let secondsOfDay = Int(t % 86_400)
        // Civil-from-days (proleptic Gregorian), days since 1970-01-01.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
        let yearDay = cumulative[month - 1] + day + (leap && month > 2 ? 1 : 0)
        return Calendar(year: year, month: month, day: day, hour: secondsOfDay / 3600,
                        minute: secondsOfDay / 60 % 60, second: secondsOfDay % 60,
                        yearDay: yearDay, weekDay: (days % 7 + 11) % 7)
    }
}
