import Board
import LuaBridge
import NIOCore

/// Lua: the `gpio` module (main spec §5.5), both profiles, on the board's pins
/// (`Board.gpio`). Followed: app/modules/gpio.c and docs/modules/gpio.md of the
/// firmware (argument order of checks, error texts, "last callback wins", `serout`).
///
/// `gpio.trig` callbacks fire when the outside world changes the level of a pin in
/// `gpio.INT` mode (`GPIOBank.drive`: the `--board` file, tests, scenarios) and the
/// change matches the trigger type; 2.2 passes `level`, 3.0 `level, when, eventcount`.
/// Level triggers ("low", "high") fire once per change into the level (the device
/// keeps firing while the level holds). `gpio.pulse` is not in the default build and
/// not provided.
public final class GPIOModule: LuaModule {
    public static let name = "gpio"
    /// Watches the board's pin edges from boot (gpio.trig callbacks).
    public static let createdAtBoot = true

    unowned let runtime: Runtime
    var board: Board { runtime.board }
    /// Trigger type and callback per pin.
    private var triggers: [Int: (type: TriggerType, callback: LuaRef)] = [:]
    private var eventCounts: [Int: Int] = [:]
    private var serout: SeroutRun?

    /// `gpio.trig` types, in the firmware's option order.
    enum TriggerType: String, CaseIterable {
        case none, up, down, both, low, high

        func matches(level: Int) -> Bool {
            switch self {
            case .none: return false
            case .both: return true
            case .up, .high: return level == 1
            case .down, .low: return level == 0
            }
        }
    }

    public init(runtime: Runtime) {
        self.runtime = runtime
        runtime.board.gpio.observeEdges("gpio") { [weak self] pin, level in self?.edge(pin: pin, level: level) }
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("mode") { [unowned self] lua throws(LuaError) in try mode(lua) }
        table.function("read") { [unowned self] lua throws(LuaError) in try read(lua) }
        table.function("write") { [unowned self] lua throws(LuaError) in try write(lua) }
        table.function("trig") { [unowned self] lua throws(LuaError) in try trig(lua) }
        table.function("serout") { [unowned self] lua throws(LuaError) in try serout(lua) }
        table.integer("OUTPUT", GPIOBank.Mode.output.rawValue)
        table.integer("OPENDRAIN", GPIOBank.Mode.openDrain.rawValue)
        table.integer("INPUT", GPIOBank.Mode.input.rawValue)
        table.integer("INT", GPIOBank.Mode.interrupt.rawValue)
        table.integer("HIGH", 1)
        table.integer("LOW", 0)
        table.integer("FLOAT", 0)
        table.integer("PULLUP", 1)
    }

    /// The firmware reads pins as `unsigned`: a negative number is out of range but is
    /// printed back as a signed 32-bit value.
    static func pinNumber(_ value: Int) -> Int { Int(Int32(truncatingIfNeeded: value)) }

    // MARK: Functions

    /// Lua: gpio.mode(pin, mode[, pullup])
    private func mode(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pin = try lua.checkInteger(1)
        let modeValue = try lua.checkInteger(2)
        let pull = try lua.optionalInteger(3, default: 0)
        let mode = GPIOBank.Mode(rawValue: modeValue)
        guard GPIOBank.exists(pin), mode != .interrupt || pin > 0 else { throw .argument(1, "Invalid pin") }
        guard let mode else { throw .argument(2, "wrong arg type") }
        if mode != .interrupt, let old = triggers.removeValue(forKey: pin) { lua.unref(old.callback) }
        // A PWM channel on the pin closes (more-modules spec §6).
        board.pwm.close(pin)
        board.gpio.setMode(pin, mode, pullUp: pull != 0)
        return 0
    }

    /// Lua: gpio.read(pin)
    private func read(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pin = try lua.checkInteger(1)
        guard GPIOBank.exists(pin) else { throw .message("gpio \(Self.pinNumber(pin)) does not exist") }
        lua.push(board.gpio.read(pin))
        return 1
    }

    /// Lua: gpio.write(pin, level)
    private func write(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pin = try lua.checkInteger(1)
        let level = try lua.checkInteger(2)
        guard GPIOBank.exists(pin) else { throw .message("gpio \(Self.pinNumber(pin)) does not exist") }
        guard level == 0 || level == 1 else { throw .argument(2, "wrong level type") }
        board.gpio.write(pin, level)
        return 0
    }

    /// Lua: gpio.trig(pin[, type[, callback]]) — "none" clears; without a callback the
    /// old one is kept; a non-function clears the old one and fails.
    private func trig(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pin = try lua.checkInteger(1)
        guard GPIOBank.exists(pin), pin > 0 else { throw .argument(1, "Invalid interrupt pin") }
        var type = TriggerType.none
        if !lua.isNoneOrNil(2) {
            let name = try lua.checkString(2)
            guard let option = TriggerType(rawValue: name) else { throw .argument(2, "invalid option '\(name)'") }
            type = option
        }
        let old = triggers[pin]
        if type == .none {
            triggers[pin] = nil
            if let old { lua.unref(old.callback) }
        } else if lua.top == 2, let old {
            triggers[pin] = (type, old.callback)
        } else if lua.isFunction(3) {
            if let old { lua.unref(old.callback) }
            triggers[pin] = (type, lua.ref(at: 3))
        } else {
            triggers[pin] = nil
            if let old { lua.unref(old.callback) }
            throw .argument(3, "invalid callback type")
        }
        eventCounts[pin] = 0
        return 0
    }

    /// Lua: gpio.serout(pin, start_level, delay_times[, cycle_num[, callback]]) — the
    /// levels alternate, starting with `start_level`, for each delay in µs, `cycle_num`
    /// times over the table (the firmware's 32-bit unsigned repeat counter: 0 and negative
    /// counts wrap to about 2^32 cycles). With a callback the sequence runs asynchronously
    /// on the device clock and the callback runs afterwards. Without, the writes happen
    /// within the call: the host does not busy-wait the delays, but their device time
    /// (at least 1 µs a step) counts against the watchdog, so a sequence longer than it
    /// resets the device as the firmware's busy loop would, and moves virtual time.
    private func serout(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pin = try lua.checkInteger(1)
        let level = try lua.checkInteger(2)
        let cycles = UInt64(UInt32(truncatingIfNeeded: try lua.optionalInteger(4, default: 1) &- 1)) + 1
        let hasCallback = !lua.isNoneOrNil(5)
        guard GPIOBank.exists(pin) else { throw .argument(1, "Invalid pin") }
        guard level == 0 || level == 1 else { throw .argument(2, "Wrong level type") }
        guard lua.type(at: 3) == .table, lua.rawLength(at: 3) < 256 else { throw .argument(3, "Invalid delay_times") }
        var delays: [Int] = []
        for index in 0..<lua.rawLength(at: 3) {
            _ = lua.rawGet(Int32(index + 1), in: 3)
            let delay = lua.integer(at: -1)
            let typeName = lua.typeName(at: -1)
            lua.pop()
            guard let delay else { throw .argument(-1, "number expected, got \(typeName)") }
            delays.append(Int(UInt32(truncatingIfNeeded: delay)))
        }
        let steps = SeroutSteps(delays: delays, cycles: cycles, level: level)
        if !hasCallback {
            writeSynchronously(pin: pin, steps: steps, lua)
            return 0
        }
        // A number as callback: the sequence runs asynchronously without one.
        let callback = lua.isFunction(5) ? lua.ref(at: 5) : nil
        serout?.stop()
        let run = SeroutRun(module: self, pin: pin, steps: steps, callback: callback)
        serout = run
        runtime.retain(run)
        run.next()
        return 0
    }

    /// A synchronous serout's writes, charging their device time to the watchdog: once it
    /// would bite, the rest is not written and the device resets. Ctrl-C ends it too.
    private func writeSynchronously(pin: Int, steps: SeroutSteps, _ lua: LuaState) {
        var steps = steps
        let budget = lua.watchdogRemaining
        var spent: Int64 = 0
        while let step = steps.next() {
            board.gpio.write(pin, step.level)
            let (sum, overflow) = spent.addingReportingOverflow(Int64(max(step.delay, 1)) * 1000)
            spent = overflow ? .max : sum
            if let budget, spent >= budget {
                runtime.clock.advance(by: .nanoseconds(budget))
                lua.trip(.watchdog)
                return
            }
            if LuaState.interruptPending {
                lua.trip(.interrupt)
                return
            }
        }
        runtime.clock.advance(by: .nanoseconds(spent))
        lua.chargeWatchdog(nanoseconds: spent)
    }

    /// A serout's steps, made one at a time (a cycle count can be 2^32): the level
    /// alternates at every step, across cycles too, as the firmware's loop does.
    struct SeroutSteps {
        let delays: [Int]
        var cyclesLeft: UInt64
        var level: Int
        var index = 0

        init(delays: [Int], cycles: UInt64, level: Int) {
            self.delays = delays
            self.cyclesLeft = delays.isEmpty ? 0 : cycles
            self.level = level
        }

        mutating func next() -> (level: Int, delay: Int)? {
            guard cyclesLeft > 0 else { return nil }
            let step = (level: level, delay: delays[index])
            level = 1 - level
            index += 1
            if index == delays.count {
                index = 0
                cyclesLeft -= 1
            }
            return step
        }
    }

    /// An asynchronous `gpio.serout`: one write per step on the device clock.
    final class SeroutRun: RuntimeHandle {
        weak var module: GPIOModule?
        let pin: Int
        var steps: SeroutSteps
        let callback: LuaRef?
        var task: ClockTask?

        init(module: GPIOModule, pin: Int, steps: SeroutSteps, callback: LuaRef?) {
            self.module = module
            self.pin = pin
            self.steps = steps
            self.callback = callback
        }

        func next() {
            guard let module, module.runtime.isCurrent(module.runtime.generation) else { return }
            guard let step = steps.next() else {
                finish()
                return
            }
            module.board.gpio.write(pin, step.level)
            task = module.runtime.clock.schedule(in: .microseconds(Int64(step.delay))) { [weak self] in self?.next() }
        }

        private func finish() {
            guard let module else { return }
            let runtime = module.runtime
            module.serout = nil
            runtime.release(self)
            if let callback, !runtime.halted {
                let lua = runtime.lua
                lua.push(callback)
                lua.unref(callback)
                runtime.callback(.task, arguments: 0)
            }
        }

        func stop() {
            task?.cancel()
            module?.runtime.release(self)
        }

        func abortForReboot() { task?.cancel() }
    }

    // MARK: Edges from the board

    private func edge(pin: Int, level: Int) {
        guard !runtime.halted, let trigger = triggers[pin], board.gpio.pin(pin).mode == .interrupt,
              trigger.type.matches(level: level) else { return }
        let count = (eventCounts[pin] ?? 0) + 1
        eventCounts[pin] = count
        let lua = runtime.lua
        lua.push(trigger.callback)
        lua.push(level)
        if runtime.profile == .v3_0 {
            let micros = (runtime.clock.now - runtime.bootTime).nanoseconds / 1000
            lua.push(Int(UInt32(truncatingIfNeeded: micros)))
            lua.push(count)
            eventCounts[pin] = 0
            runtime.callback(.task, arguments: 3)
        } else {
            runtime.callback(.task, arguments: 1)
        }
    }
}
