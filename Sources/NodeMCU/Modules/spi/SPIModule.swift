import Board
import LuaBridge

/// Lua: the `spi` module, both profiles, with an empty bus: MISO floats high, so every
/// byte received is 0xFF; what is sent goes nowhere. Followed: app/modules/spi.c and
/// docs/modules/spi.md of the firmware (HSPI id 1; id 0 is the flash and refused).
public final class SPIModule: LuaModule {
    public static let name = "spi"

    unowned let runtime: Runtime
    private var dataBits = 8

    public init(runtime: Runtime) { self.runtime = runtime }

    public func register(in table: inout LuaModuleTable) {
        table.function("setup") { [unowned self] lua throws(LuaError) in try setup(lua) }
        table.function("send") { lua throws(LuaError) in try Self.send(lua) }
        table.function("recv") { lua throws(LuaError) in try Self.recv(lua) }
        table.function("set_mosi") { lua throws(LuaError) in try Self.bus(lua); return 0 }
        table.function("get_miso") { lua throws(LuaError) in try Self.getMiso(lua) }
        table.function("transaction") { lua throws(LuaError) in try Self.bus(lua); return 0 }
        for (name, value) in [("MASTER", 0), ("SLAVE", 1), ("CPHA_LOW", 0), ("CPHA_HIGH", 1), ("CPOL_LOW", 0),
                              ("CPOL_HIGH", 1), ("DATABITS_8", 8), ("HALFDUPLEX", 0), ("FULLDUPLEX", 1)] {
            table.integer(name, value)
        }
    }

    @discardableResult
    private static func bus(_ lua: LuaState) throws(LuaError) -> Int {
        let id = try lua.checkInteger(1)
        guard id == 1 else { throw .message("spi \(GPIOModule.pinNumber(id)) does not exist") }
        return id
    }

    /// Lua: spi.setup(id, mode, cpol, cpha, databits, clock_div[, duplex_mode]) → 1
    private func setup(_ lua: LuaState) throws(LuaError) -> Int32 {
        try Self.bus(lua)
        let mode = try lua.checkInteger(2)
        let cpol = try lua.checkInteger(3)
        let cpha = try lua.checkInteger(4)
        let bits = try lua.checkInteger(5)
        let divider = try lua.checkInteger(6)
        let duplex = try lua.optionalInteger(7, default: 0)
        guard mode == 0 || mode == 1 else { throw .message("wrong arg type") }
        guard cpol == 0 || cpol == 1 else { throw .message("wrong arg type") }
        guard cpha == 0 || cpha == 1 else { throw .message("wrong arg type") }
        guard (1...32).contains(bits) else { throw .message("out of range") }
        guard duplex == 0 || duplex == 1 else { throw .message("out of range") }
        _ = divider
        dataBits = bits
        lua.push(1)
        return 1
    }

    /// Lua: spi.send(id, data1[, data2[, ..., datan]]) → bytes written (and, full duplex, the
    /// received 0xFF data)
    private static func send(_ lua: LuaState) throws(LuaError) -> Int32 {
        try bus(lua)
        var written = 0
        let top = lua.top
        if top >= 2 {
            for index in 2...top {
                switch lua.type(at: index) {
                case .number: written += 1
                case .string: written += lua.rawLength(at: index)
                case .table: written += lua.rawLength(at: index)
                default: throw .message("wrong data type")
                }
            }
        }
        lua.push(written)
        return 1
    }

    /// Lua: spi.recv(id, size[, default_data]) → `size` bytes of 0xFF
    private static func recv(_ lua: LuaState) throws(LuaError) -> Int32 {
        try bus(lua)
        let size = try lua.checkInteger(2)
        guard size >= 0 else { throw .message("out of range") }
        lua.push([UInt8](repeating: 0xFF, count: min(size, 1 << 20)))
        return 1
    }

    /// Lua: spi.get_miso(id, offset, bitlen, num) → `num` values of all ones
    private static func getMiso(_ lua: LuaState) throws(LuaError) -> Int32 {
        try bus(lua)
        _ = try lua.checkInteger(2)
        let bits = try lua.checkInteger(3)
        let count = try lua.optionalInteger(4, default: 1)
        guard (1...32).contains(bits), (1...64).contains(count) else { throw .message("out of range") }
        let value = bits == 32 ? Int(UInt32.max) : (1 << bits) - 1
        guard lua.checkStack(Int32(count)) else { throw .message("stack overflow") }
        for _ in 0..<count { lua.push(value) }
        return Int32(count)
    }
}
