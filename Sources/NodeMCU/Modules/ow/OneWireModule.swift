import Board
import LuaBridge

/// Lua: the `ow` module (1-Wire), both profiles, with an empty bus: `ow.reset` sees no
/// presence pulse (0), a search finds nothing (nil), reads see the pulled-up line
/// (0xFF). The CRC helpers compute as the firmware's Dallas routines do. Followed:
/// app/modules/ow.c, app/driver/onewire.c and docs/modules/ow.md of the firmware.
public final class OneWireModule: LuaModule {
    public static let name = "ow"

    unowned let runtime: Runtime

    public init(runtime: Runtime) { self.runtime = runtime }

    public func register(in table: inout LuaModuleTable) {
        let board = runtime.board
        for name in ["setup", "skip", "depower", "reset_search"] {
            table.function(name) { lua throws(LuaError) in
                let pin = try Self.pin(lua)
                if name == "setup" { board.gpio.setMode(pin, .input, pullUp: true) }
                return 0
            }
        }
        table.function("reset") { lua throws(LuaError) in try Self.pin(lua); lua.push(0); return 1 }
        table.function("select") { lua throws(LuaError) in
            try Self.pin(lua)
            guard lua.isStringLike(2), lua.rawLength(at: 2) == 8 || (lua.bytes(at: 2)?.count ?? 0) == 8 else {
                throw .message("ROM code must be 8 bytes")
            }
            return 0
        }
        table.function("write") { lua throws(LuaError) in
            try Self.pin(lua)
            let value = try lua.checkInteger(2)
            guard (0...255).contains(value) else { throw .message("wrong arg range") }
            _ = try lua.optionalInteger(3, default: 0)
            return 0
        }
        table.function("write_bytes") { lua throws(LuaError) in
            try Self.pin(lua)
            _ = try lua.checkBytes(2)
            return 0
        }
        table.function("read") { lua throws(LuaError) in try Self.pin(lua); lua.push(0xFF); return 1 }
        table.function("read_bytes") { lua throws(LuaError) in
            try Self.pin(lua)
            let size = try lua.checkInteger(2)
            guard (1...256).contains(size) else { throw .message("wrong arg range") }
            lua.push([UInt8](repeating: 0xFF, count: size))
            return 1
        }
        table.function("target_search") { lua throws(LuaError) in
            try Self.pin(lua)
            _ = try lua.checkInteger(2)
            return 0
        }
        table.function("search") { lua throws(LuaError) in try Self.pin(lua); lua.pushNil(); return 1 }
        table.function("crc8") { lua throws(LuaError) in
            lua.push(Int(Self.crc8(try lua.checkBytes(1))))
            return 1
        }
        table.function("crc16") { lua throws(LuaError) in
            let data = try lua.checkBytes(1)
            let seed = try lua.optionalInteger(2, default: 0)
            lua.push(Int(Self.crc16(data, seed: UInt16(truncatingIfNeeded: seed))))
            return 1
        }
        table.function("check_crc16") { lua throws(LuaError) in
            let data = try lua.checkBytes(1)
            let inverted = try lua.checkBytes(2)
            let seed = try lua.optionalInteger(3, default: 0)
            guard inverted.count >= 2 else { lua.push(false); return 1 }
            let crc = ~Self.crc16(data, seed: UInt16(truncatingIfNeeded: seed))
            lua.push(UInt8(crc & 0xFF) == inverted[0] && UInt8(crc >> 8) == inverted[1])
            return 1
        }
    }

    @discardableResult
    private static func pin(_ lua: LuaState) throws(LuaError) -> Int {
        let pin = try lua.checkInteger(1)
        guard (1...12).contains(pin) else { throw .message("ow \(GPIOModule.pinNumber(pin)) does not exist") }
        return pin
    }

    /// The Dallas/Maxim CRC-8 (polynomial x⁸ + x⁵ + x⁴ + 1, reflected).
    static func crc8(_ data: [UInt8]) -> UInt8 {
        var crc: UInt8 = 0
        for byte in data {
            var b = byte
            for _ in 0..<8 {
                let mix = (crc ^ b) & 0x01
                crc >>= 1
                if mix != 0 { crc ^= 0x8C }
                b >>= 1
            }
        }
        return crc
    }

    /// The 1-Wire CRC-16 (polynomial 0x8005, reflected) from `seed`.
    static func crc16(_ data: [UInt8], seed: UInt16) -> UInt16 {
        var crc = seed
        for byte in data {
            crc ^= UInt16(byte)
            for _ in 0..<8 {
                crc = crc & 1 != 0 ? (crc >> 1) ^ 0xA001 : crc >> 1
            }
        }
        return crc
    }
}
