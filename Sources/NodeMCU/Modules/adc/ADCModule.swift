import Board
import LuaBridge

/// Lua: the `adc` module (more-modules spec §3), both profiles, on the board's ADC
/// (`Board.adc`: the TOUT reading, VDD33 and init-data byte 107). Followed:
/// app/modules/adc.c and docs/modules/adc.md of the firmware.
public final class ADCModule: LuaModule {
    public static let name = "adc"

    unowned let runtime: Runtime

    public init(runtime: Runtime) { self.runtime = runtime }

    public func register(in table: inout LuaModuleTable) {
        table.function("read") { [unowned self] lua throws(LuaError) in try read(lua) }
        table.function("readvdd33") { [unowned self] lua throws(LuaError) in readvdd33(lua) }
        table.function("force_init_mode") { [unowned self] lua throws(LuaError) in try forceInitMode(lua) }
        table.integer("INIT_ADC", 0x00)
        table.integer("INIT_VDD33", 0xFF)
    }

    /// Lua: adc.read(channel) — channel 0 only.
    private func read(_ lua: LuaState) throws(LuaError) -> Int32 {
        let channel = try lua.checkInteger(1)
        guard channel == 0 else { throw .message("adc \(GPIOModule.pinNumber(channel)) does not exist") }
        lua.push(runtime.board.adc.read())
        return 1
    }

    /// Lua: adc.readvdd33() — arguments are ignored.
    private func readvdd33(_ lua: LuaState) -> Int32 {
        lua.push(runtime.board.adc.readVDD33())
        return 1
    }

    /// Lua: adc.force_init_mode(mode) — false if byte 107 already holds `mode`, else
    /// stores it (effective after a restart) and returns true. 2.2 takes any integer's
    /// low 8 bits; 3.0 only `adc.INIT_ADC` or `adc.INIT_VDD33`.
    private func forceInitMode(_ lua: LuaState) throws(LuaError) -> Int32 {
        let value = try lua.checkInteger(1)
        if runtime.profile == .v3_0 && value != 0x00 && value != 0xFF { throw .argument(1, "Invalid mode") }
        let byte = UInt8(truncatingIfNeeded: value)
        let adc = runtime.board.adc
        if adc.initByte == byte {
            lua.push(false)
        } else {
            adc.initByte = byte
            lua.push(true)
        }
        return 1
    }
}
