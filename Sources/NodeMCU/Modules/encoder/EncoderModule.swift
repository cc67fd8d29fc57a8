import LuaBridge

/// Lua: the `encoder` module, both profiles, identical (more-modules §10), after the
/// firmware's app/modules/encoder.c and docs/modules/encoder.md.
public final class EncoderModule: LuaModule {
    public static let name = "encoder"

    public init(runtime: Runtime) {}

    public func register(in table: inout LuaModuleTable) {
        table.function("toBase64") { lua throws(LuaError) in try Self.toBase64(lua) }
        table.function("fromBase64") { lua throws(LuaError) in try Self.fromBase64(lua) }
        table.function("toHex") { lua throws(LuaError) in try Self.toHex(lua) }
        table.function("fromHex") { lua throws(LuaError) in try Self.fromHex(lua) }
    }

    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func base64(_ input: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        while index < input.count {
            let b0 = Int(input[index])
            let b1 = index + 1 < input.count ? Int(input[index + 1]) : 0
            let b2 = index + 2 < input.count ? Int(input[index + 2]) : 0
            output.append(alphabet[b0 >> 2])
            output.append(alphabet[(b0 & 3) << 4 | b1 >> 4])
            output.append(index + 1 < input.count ? alphabet[(b1 & 15) << 2 | b2 >> 6] : UInt8(ascii: "="))
            output.append(index + 2 < input.count ? alphabet[b2 & 63] : UInt8(ascii: "="))
            index += 3
        }
        return output
    }

    static func hex(_ input: [UInt8]) -> [UInt8] {
        let digits = Array("0123456789abcdef".utf8)
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 2)
        for byte in input {
            output.append(digits[Int(byte >> 4)])
            output.append(digits[Int(byte & 15)])
        }
        return output
    }

    /// Lua: encoder.toBase64(binary)
    private static func toBase64(_ lua: LuaState) throws(LuaError) -> Int32 {
        lua.push(base64(try lua.checkBytes(1)))
        return 1
    }

    /// Lua: encoder.toHex(binary) — lower case.
    private static func toHex(_ lua: LuaState) throws(LuaError) -> Int32 {
        lua.push(hex(try lua.checkBytes(1)))
        return 1
    }

    /// Lua: encoder.fromBase64(b64) — error `Invalid base64 string` for a length that is
    /// not a multiple of 4 or a character outside the alphabet (bar 1–2 trailing `=`).
    private static func fromBase64(_ lua: LuaState) throws(LuaError) -> Int32 {
        let input = try lua.checkBytes(1)
        var values: [Int] = []
        var padding = 0
        guard input.count % 4 == 0 else { throw .message("Invalid base64 string") }
        for (position, byte) in input.enumerated() {
            if byte == UInt8(ascii: "=") && position >= input.count - 2 {
                padding += 1
                continue
            }
            guard padding == 0, let value = alphabet.firstIndex(of: byte) else { throw .message("Invalid base64 string") }
            values.append(value)
        }
        var output: [UInt8] = []
        var index = 0
        while index < values.count {
            let group = values[index..<min(index + 4, values.count)]
            let v = group.enumerated().reduce(0) { $0 | $1.element << (18 - 6 * $1.offset) }
            output.append(UInt8(v >> 16 & 255))
            if group.count > 2 { output.append(UInt8(v >> 8 & 255)) }
            if group.count > 3 { output.append(UInt8(v & 255)) }
            index += 4
        }
        lua.push(output)
        return 1
    }

    /// Lua: encoder.fromHex(hex) — either case; error `Invalid hex string` for an odd
    /// length or a non-hex character.
    private static func fromHex(_ lua: LuaState) throws(LuaError) -> Int32 {
        let input = try lua.checkBytes(1)
        guard input.count % 2 == 0 else { throw .message("Invalid hex string") }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var output: [UInt8] = []
        var index = 0
        while index < input.count {
            guard let high = nibble(input[index]), let low = nibble(input[index + 1]) else {
                throw .message("Invalid hex string")
            }
            output.append(high << 4 | low)
            index += 2
        }
        lua.push(output)
        return 1
    }
}
