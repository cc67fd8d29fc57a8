import Board
import LuaBridge

/// Lua: the `pwm` module (more-modules spec §6), both profiles, on the board's PWM
/// state (`Board.pwm`: up to six channels sharing one frequency; no signal is made).
/// Followed: app/modules/pwm.c, app/platform/platform.c (`platform_pwm_*`) and
/// docs/modules/pwm.md of the firmware. `pwm2` is not in the presence table and not
/// provided.
public final class PWMModule: LuaModule {
    public static let name = "pwm"

    unowned let runtime: Runtime
    var pwm: PWMController { runtime.board.pwm }

    public init(runtime: Runtime) { self.runtime = runtime }

    public func register(in table: inout LuaModuleTable) {
        table.function("setup") { [unowned self] lua throws(LuaError) in try setup(lua) }
        table.function("close") { [unowned self] lua throws(LuaError) in try close(lua) }
        table.function("start") { [unowned self] lua throws(LuaError) in try start(lua) }
        table.function("stop") { [unowned self] lua throws(LuaError) in try stop(lua) }
        table.function("setclock") { [unowned self] lua throws(LuaError) in try setclock(lua) }
        table.function("getclock") { [unowned self] lua throws(LuaError) in try getclock(lua) }
        table.function("setduty") { [unowned self] lua throws(LuaError) in try setduty(lua) }
        table.function("getduty") { [unowned self] lua throws(LuaError) in try getduty(lua) }
    }

    private func pin(_ lua: LuaState) throws(LuaError) -> Int {
        let pin = try lua.checkInteger(1)
        guard (1...12).contains(pin) || pin == 0 else { throw .message("pwm \(GPIOModule.pinNumber(pin)) does not exist") }
        return pin
    }

    /// The shared frequency for a requested clock: cut to 16 bits, clamped to 1…1000.
    static func frequency(for clock: Int) -> Int {
        min(max(Int(UInt16(truncatingIfNeeded: clock)), 1), 1000)
    }

    /// Lua: pwm.setup(pin, clock, duty) → the frequency in effect
    private func setup(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pin = try pin(lua)
        if pin == 0 { throw .message("no pwm for D0") }
        let clock = try lua.checkInteger(2)
        guard clock > 0 else { throw .message("wrong arg range") }
        let duty = try lua.checkInteger(3)
        guard (0...1023).contains(duty) else { throw .message("wrong arg range") }
        guard pwm.attach(pin, duty: duty) else { throw .message("too many pwms.") }
        pwm.setFrequency(Self.frequency(for: clock))
        lua.push(pwm.frequency)
        return 1
    }

    /// Lua: pwm.close(pin)
    private func close(_ lua: LuaState) throws(LuaError) -> Int32 {
        pwm.close(try pin(lua))
        return 0
    }

    /// Lua: pwm.start(pin)
    private func start(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pin = try pin(lua)
        guard pwm.channels[pin] != nil else { throw .message("Unable to start PWM output") }
        pwm.setRunning(pin, true)
        return 0
    }

    /// Lua: pwm.stop(pin) — outputs 0; the stored duty stays.
    private func stop(_ lua: LuaState) throws(LuaError) -> Int32 {
        pwm.setRunning(try pin(lua), false)
        return 0
    }

    /// Lua: pwm.setclock(pin, clock) → the frequency in effect (0 if the pin is no channel)
    private func setclock(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pin = try pin(lua)
        let clock = try lua.checkInteger(2)
        guard clock > 0 else { throw .message("wrong arg range") }
        guard pwm.channels[pin] != nil else {
            lua.push(0)
            return 1
        }
        pwm.setFrequency(Self.frequency(for: clock))
        lua.push(pwm.frequency)
        return 1
    }

    /// Lua: pwm.getclock(pin) → the shared frequency, or 0 if the pin is no channel
    private func getclock(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pin = try pin(lua)
        lua.push(pwm.channels[pin] == nil ? 0 : pwm.frequency)
        return 1
    }

    /// Lua: pwm.setduty(pin, duty) → the duty in effect (0 if the pin is no channel).
    /// Negative duties are not rejected: −1…−3077 come out full on (1023), as on the
    /// device's unsigned arithmetic.
    private func setduty(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pin = try pin(lua)
        let duty = try lua.checkInteger(2)
        guard duty <= 1023 else { throw .message("wrong arg range") }
        guard pwm.channels[pin] != nil else {
            lua.push(0)
            return 1
        }
        let stored = duty < 0 ? Self.wrappedDuty(duty) : duty
        pwm.setDuty(pin, stored)
        lua.push(stored)
        return 1
    }

    /// The duty the firmware ends up with for a negative request: its unsigned
    /// arithmetic saturates at full on (spec §6: −1…−3077 → 1023). Below −3077 the
    /// device wraps in ways the spec leaves unconfirmed; the host keeps full on.
    static func wrappedDuty(_ duty: Int) -> Int { 1023 }

    /// Lua: pwm.getduty(pin) → the stored duty (0 if the pin is no channel)
    private func getduty(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pin = try pin(lua)
        lua.push(pwm.channels[pin]?.duty ?? 0)
        return 1
    }
}
