import Board
import LuaBridge
import NIOCore

/// Lua: the `cron` module (more-modules spec §14), both profiles, driven by the board's
/// RTC: at each UTC minute start every scheduled entry whose five fields all match runs
/// as `fn(entry)`, in scheduling order; until the RTC is set it checks every second.
/// Followed: app/modules/cron.c and docs/modules/cron.md of the firmware (2.2: single
/// spaces between fields and its `*/n` steps counted from 0; 3.0: spaces or tabs,
/// surrounding whitespace, steps from the field's minimum).
///
/// Host: while any entry is scheduled the process stays alive (like an armed timer).
public final class CronModule: LuaModule {
    public static let name = "cron"

    unowned let runtime: Runtime
    let entryType: LuaObjectType<CronEntry>
    /// Scheduled entries in order, each with a registry reference to its userdata.
    private var scheduled: [(entry: CronEntry, ref: LuaRef)] = []
    private var ticker: Ticker?

    /// The minute ticker: holds the process while entries are scheduled.
    final class Ticker: RuntimeHandle {
        var task: ClockTask?
        func abortForReboot() { task?.cancel() }
    }

    public init(runtime: Runtime) {
        self.runtime = runtime
        let profile = runtime.profile
        let methods: [(String, LuaObjectType<CronEntry>.Method)] = [
            ("schedule", { entry, lua throws(LuaError) in
                let mask = try lua.checkString(2)
                entry.mask = try CronMask(parsing: mask, profile: profile)
                entry.module?.add(entry, userdataAt: 1, on: lua)
                return 0
            }),
            ("handler", { entry, lua throws(LuaError) in
                guard lua.isFunction(2) else { throw CronModule.functionError(lua, index: 2, profile: profile) }
                if let old = entry.callback { lua.unref(old) }
                entry.callback = lua.ref(at: 2)
                return 0
            }),
            ("unschedule", { entry, lua throws(LuaError) in
                entry.module?.remove(entry, on: lua)
                return 0
            }),
        ]
        entryType = LuaObjectType(name: "cron.entry", in: runtime.lua, methods: methods) { lua, entry in
            if let callback = entry.callback { lua.unref(callback) }
            entry.callback = nil
        }
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("schedule") { [unowned self] lua throws(LuaError) in try schedule(lua) }
        table.function("reset") { [unowned self] lua throws(LuaError) in reset(lua) }
    }

    static func functionError(_ lua: LuaState, index: Int32, profile: FirmwareProfile) -> LuaError {
        profile == .v2_2 ? lua.typeError(index, expected: "function or lightfunction")
            : lua.typeError(index, expected: "function")
    }

    /// Lua: cron.schedule(mask, fn) → entry
    private func schedule(_ lua: LuaState) throws(LuaError) -> Int32 {
        let text = try lua.checkString(1)
        guard lua.isFunction(2) else { throw Self.functionError(lua, index: 2, profile: runtime.profile) }
        let mask = try CronMask(parsing: text, profile: runtime.profile)
        let entry = CronEntry(mask: mask, module: self)
        entry.callback = lua.ref(at: 2)
        entryType.push(entry, on: lua)
        add(entry, userdataAt: -1, on: lua)
        return 1
    }

    /// Lua: cron.reset() — unschedules every entry
    private func reset(_ lua: LuaState) -> Int32 {
        for item in scheduled { lua.unref(item.ref) }
        scheduled = []
        updateTicker()
        return 0
    }

    func add(_ entry: CronEntry, userdataAt index: Int32, on lua: LuaState) {
        guard !scheduled.contains(where: { $0.entry === entry }) else { return }
        scheduled.append((entry, lua.ref(at: index)))
        updateTicker()
    }

    func remove(_ entry: CronEntry, on lua: LuaState) {
        guard let index = scheduled.firstIndex(where: { $0.entry === entry }) else { return }
        lua.unref(scheduled[index].ref)
        scheduled.remove(at: index)
        updateTicker()
    }

    private func updateTicker() {
        if scheduled.isEmpty {
            if let ticker {
                ticker.task?.cancel()
                runtime.release(ticker)
                self.ticker = nil
            }
        } else if ticker == nil {
            let ticker = Ticker()
            self.ticker = ticker
            runtime.retain(ticker)
            arm(ticker, in: .seconds(1))
        }
    }

    private func arm(_ ticker: Ticker, in delay: TimeAmount) {
        let generation = runtime.generation
        ticker.task = runtime.clock.schedule(in: delay) { [weak self, weak ticker, unowned runtime] in
            guard let self, let ticker, runtime.isCurrent(generation), self.ticker === ticker else { return }
            tick(ticker)
        }
    }

    /// As the firmware's timer: unset RTC → check again in 1 s; else fire this minute's
    /// entries and wait for the next minute start.
    private func tick(_ ticker: Ticker) {
        guard let micros = runtime.board.rtc.microseconds, micros >= 1_000_000 else {
            arm(ticker, in: .seconds(1))
            return
        }
        var seconds = micros / 1_000_000
        var wait = 60_000 - (seconds % 60) * 1000 - (micros % 1_000_000) / 1000
        if seconds % 60 == 59 {
            seconds += 1
            wait += 60_000
        }
        arm(ticker, in: .milliseconds(wait))
        let time = Calendar.utc(seconds)
        let lua = runtime.lua
        for item in scheduled where item.entry.mask.matches(time) {
            guard let callback = item.entry.callback, !runtime.halted else { continue }
            lua.push(callback)
            lua.push(item.ref)
            runtime.callback(.task, arguments: 1)
        }
    }
}

/// A `cron.entry`: its mask and handler.
public final class CronEntry {
    var mask: CronMask
    var callback: LuaRef?
    weak var module: CronModule?

    init(mask: CronMask, module: CronModule) {
        self.mask = mask
        self.module = module
    }
}

/// A parsed cron mask: one bit set per field (bit i = minimum + i).
struct CronMask: Equatable {
    var minute: UInt64 = 0, hour: UInt64 = 0, day: UInt64 = 0, month: UInt64 = 0, weekday: UInt64 = 0

    func matches(_ time: Calendar) -> Bool {
        minute & (1 << UInt64(time.minute)) != 0 && hour & (1 << UInt64(time.hour)) != 0
            && day & (1 << UInt64(time.day - 1)) != 0 && month & (1 << UInt64(time.month - 1)) != 0
            && weekday & (1 << UInt64(time.weekDay)) != 0
    }

    /// Parses as the firmware does, with its error texts (offsets are byte offsets).
    init(parsing text: String, profile: FirmwareProfile) throws(LuaError) {
        let bytes = Array(text.utf8)
        var position = 0
        let lenient = profile == .v3_0
        func isSpace(_ i: Int) -> Bool { i < bytes.count && (bytes[i] == 32 || (lenient && bytes[i] == 9)) }
        if lenient { while isSpace(position) { position += 1 } }
        let ranges: [(Int, Int)] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
        var fields: [UInt64] = []
        for (index, (minimum, maximum)) in ranges.enumerated() {
            if index > 0 {
                guard isSpace(position) else { throw .message("invalid spec (separator @\(position))") }
                position += 1
                if lenient { while isSpace(position) { position += 1 } }
            }
            fields.append(try Self.parseField(bytes, &position, minimum, maximum, profile: profile))
        }
        if lenient { while isSpace(position) || (position < bytes.count && [10, 13, 11, 12].contains(bytes[position])) { position += 1 } }
        guard position == bytes.count else { throw .message("invalid spec (trailing @\(position))") }
        (minute, hour, day, month, weekday) = (fields[0], fields[1], fields[2], fields[3], fields[4])
    }

    /// `strtol` base 10 from `position`: the value (0 if no digits) and the end.
    private static func strtol(_ bytes: [UInt8], _ start: Int) -> (Int, Int) {
        var i = start
        while i < bytes.count, [32, 9, 10, 11, 12, 13].contains(bytes[i]) { i += 1 }
        var negative = false
        if i < bytes.count, bytes[i] == 43 || bytes[i] == 45 { negative = bytes[i] == 45; i += 1 }
        let digitsStart = i
        var value = 0
        while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 {
            value = min(value * 10 + Int(bytes[i] - 48), Int(Int32.max))
            i += 1
        }
        if i == digitsStart { return (0, start) }
        return (negative ? -value : value, i)
    }

    private static func parseField(_ bytes: [UInt8], _ position: inout Int, _ minimum: Int, _ maximum: Int,
                                   profile: FirmwareProfile) throws(LuaError) -> UInt64 {
        var result: UInt64 = 0
        if position < bytes.count && bytes[position] == 42 {  // '*'
            var each = 1
            position += 1
            if position < bytes.count && bytes[position] == 47 {  // '/'
                (each, position) = strtol(bytes, position + 1)
                let shown = Int(Int32(truncatingIfNeeded: each))
                if each <= 0 || each >= maximum - minimum { throw .message("invalid spec (each \(shown))") }
            }
            for i in 0...(maximum - minimum) {
                let counted = profile == .v2_2 ? minimum + i : i
                if counted % each == 0 { result |= 1 << UInt64(i) }
            }
            return result
        }
        while true {
            let (value, end) = strtol(bytes, position)
            position = end
            guard value >= minimum && value <= maximum else {
                throw .message("invalid spec (val \(Int(Int32(truncatingIfNeeded: value))) out of range \(minimum)..\(maximum))")
            }
            result |= 1 << UInt64(value - minimum)
            guard position < bytes.count && bytes[position] == 44 else { break }  // ','
            position += 1
        }
        return result
    }
}
