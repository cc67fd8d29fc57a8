import Board
import LuaBridge

/// Lua: the `i2c` module, both profiles, with an empty bus: nothing is attached, so no
/// address is acknowledged (`i2c.address` → false), writes are not acknowledged (0
/// bytes) and reads see the pulled-up bus (0xFF bytes). Scripts that probe for a
/// sensor take their "no sensor" path. Followed: app/modules/i2c.c and
/// docs/modules/i2c.md of the firmware (bus id 0 only, the software master).
public final class I2CModule: LuaModule {
    public static let name = "i2c"

    unowned let runtime: Runtime
    private var speed: Int?

    public init(runtime: Runtime) { self.runtime = runtime }

    public func register(in table: inout LuaModuleTable) {
        table.function("setup") { [unowned self] lua throws(LuaError) in try setup(lua) }
        table.function("start") { lua throws(LuaError) in try Self.bus(lua); return 0 }
        table.function("stop") { lua throws(LuaError) in try Self.bus(lua); return 0 }
        table.function("address") { lua throws(LuaError) in try Self.address(lua) }
        table.function("write") { lua throws(LuaError) in try Self.write(lua) }
        table.function("read") { lua throws(LuaError) in try Self.read(lua) }
        table.integer("SLOW", 100_000)
        table.integer("FAST", 400_000)
        if runtime.profile == .v3_0 { table.integer("FASTPLUS", 1_000_000) }
        table.integer("TRANSMITTER", 0)
        table.integer("RECEIVER", 1)
    }

    @discardableResult
    private static func bus(_ lua: LuaState) throws(LuaError) -> Int {
        let id = try lua.checkInteger(1)
        guard id == 0 else { throw .message("i2c \(GPIOModule.pinNumber(id)) does not exist") }
        return id
    }

    /// Lua: i2c.setup(id, sda, scl, speed) → the speed in effect
    private func setup(_ lua: LuaState) throws(LuaError) -> Int32 {
        try Self.bus(lua)
        let sda = try lua.checkInteger(2)
        let scl = try lua.checkInteger(3)
        let requested = try lua.checkInteger(4)
        guard sda != 0 && scl != 0 else { throw .message("no i2c for D0") }
        guard GPIOBank.exists(sda) else { throw .message("gpio \(GPIOModule.pinNumber(sda)) does not exist") }
        guard GPIOBank.exists(scl) else { throw .message("gpio \(GPIOModule.pinNumber(scl)) does not exist") }
        guard requested > 0 else { throw .argument(4, "wrong arg range") }
        speed = requested
        lua.push(requested)
        return 1
    }

    /// Lua: i2c.address(id, device_addr, direction) → true if a device acknowledged (never)
    private static func address(_ lua: LuaState) throws(LuaError) -> Int32 {
        try bus(lua)
        let address = try lua.checkInteger(2)
        let direction = try lua.checkInteger(3)
        guard (0...127).contains(address) else { throw .argument(2, "wrong arg range") }
        guard direction == 0 || direction == 1 else { throw .argument(3, "wrong arg type") }
        lua.push(false)
        return 1
    }

    /// Lua: i2c.write(id, data1[, data2[, ..., datan]]) → bytes acknowledged (0 on an empty bus)
    private static func write(_ lua: LuaState) throws(LuaError) -> Int32 {
        try bus(lua)
        let top = lua.top
        guard top >= 2 else { throw .message("wrong arg type") }
        for index in 2...top {
            switch lua.type(at: index) {
            case .number:
                guard let value = lua.integer(at: index), (0...255).contains(value) else { throw .argument(index, "wrong arg range") }
            case .string, .table:
                break
            default:
                throw .argument(index, "wrong arg type")
            }
        }
        lua.push(0)
        return 1
    }

    /// Lua: i2c.read(id, len) → `len` bytes of 0xFF (nothing drives the bus)
    private static func read(_ lua: LuaState) throws(LuaError) -> Int32 {
        try bus(lua)
        let length = try lua.checkInteger(2)
        guard length >= 0 else { throw .argument(2, "wrong arg range") }
        lua.push([UInt8](repeating: 0xFF, count: min(length, 1 << 20)))
        return 1
    }
}
