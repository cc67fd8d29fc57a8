import LuaBridge

/// Lua: the `struct` module, both profiles (more-modules §13), after the firmware's
/// app/modules/struct.c (Roberto Ierusalimschy's struct library) and
/// docs/modules/struct.md, with the ESP8266's sizes: `b B` 1, `h H` 2, `l L T i I f` 4,
/// `d` 8, `in`/`In` n ≤ 32. Integers pack from their low 32 bits (bytes past the fourth
/// are zero); unpacking reads the low 32 (2.2) or 64 (3.0) bits, and 3.0 returns values
/// outside int32 as floats. 3.0 (tag 20240225) also reports `integral size overflow`.
public final class StructModule: LuaModule {
    public static let name = "struct"

    unowned let runtime: Runtime
    var v30: Bool { runtime.profile == .v3_0 }

    public init(runtime: Runtime) {
        self.runtime = runtime
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("pack") { [unowned self] lua throws(LuaError) in try pack(lua) }
        table.function("unpack") { [unowned self] lua throws(LuaError) in try unpack(lua) }
        table.function("size") { [unowned self] lua throws(LuaError) in try size(lua) }
    }

    static let maxIntegerSize = 32
    static let maxAlignment = 8

    /// Format parsing state (the C library's Header plus its cursor).
    struct Format {
        let bytes: [UInt8]
        var index = 0
        var bigEndian = false
        var alignment = 1

        var atEnd: Bool { index >= bytes.count }

        mutating func next() -> UInt8 {
            defer { index += 1 }
            return bytes[index]
        }

        /// The decimal number following the option, or `defaultValue`.
        mutating func number(_ defaultValue: Int, strict: Bool) throws(LuaError) -> Int {
            guard !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) else { return defaultValue }
            var value = 0
            while !atEnd, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                let digit = Int(bytes[index] - UInt8(ascii: "0"))
                if value > (Int(Int32.max) - digit) / 10 {
                    if strict { throw .message("integral size overflow") }
                    value = Int(Int32(truncatingIfNeeded: value &* 10 &+ digit))
                } else {
                    value = value * 10 + digit
                }
                index += 1
            }
            return value
        }
    }

    /// The size of option `option` (0 for control options).
    private func optionSize(_ option: UInt8, _ format: inout Format) throws(LuaError) -> Int {
        switch option {
        case UInt8(ascii: "b"), UInt8(ascii: "B"): return 1
        case UInt8(ascii: "h"), UInt8(ascii: "H"): return 2
        case UInt8(ascii: "l"), UInt8(ascii: "L"), UInt8(ascii: "T"), UInt8(ascii: "f"): return 4
        case UInt8(ascii: "d"): return 8
        case UInt8(ascii: "x"): return 1
        case UInt8(ascii: "c"): return try format.number(1, strict: v30)
        case UInt8(ascii: "i"), UInt8(ascii: "I"):
            let size = try format.number(4, strict: v30)
            // A size that overflowed to a negative number (2.2) is as out of range as a huge one.
            if size > Self.maxIntegerSize || size < 0 {
                throw .message("integral size \(size) is larger than limit of \(Self.maxIntegerSize)")
            }
            return size
        default: return 0
        }
    }

    private static func padding(at length: Int, _ format: Format, _ option: UInt8, _ size: Int) -> Int {
        if size == 0 || option == UInt8(ascii: "c") { return 0 }
        let align = min(size, format.alignment)
        guard align > 0, align & (align - 1) == 0 else { return 0 }
        return (align - (length & (align - 1))) & (align - 1)
    }

    private static func control(_ option: UInt8, _ format: inout Format, strict: Bool) throws(LuaError) {
        switch option {
        case UInt8(ascii: " "): return
        case UInt8(ascii: ">"): format.bigEndian = true
        case UInt8(ascii: "<"): format.bigEndian = false
        case UInt8(ascii: "!"):
            let alignment = try format.number(maxAlignment, strict: strict)
            guard alignment > 0, alignment & (alignment - 1) == 0 else {
                throw .message("alignment \(alignment) is not a power of 2")
            }
            format.alignment = alignment
        default:
            throw .argument(1, "invalid format option '\(String(decoding: [option], as: UTF8.self))'")
        }
    }

    private static func isInteger(_ option: UInt8) -> Bool {
        Array("bBhHlLTiI".utf8).contains(option)
    }

    // MARK: pack

    /// Lua: struct.pack(format, d1, d2, …) — the packed string.
    private func pack(_ lua: LuaState) throws(LuaError) -> Int32 {
        var format = Format(bytes: try lua.checkBytes(1))
        var output: [UInt8] = []
        var argument: Int32 = 2
        while !format.atEnd {
            let option = format.next()
            var size = try optionSize(option, &format)
            output += [UInt8](repeating: 0, count: Self.padding(at: output.count, format, option, size))
            switch option {
            case _ where Self.isInteger(option):
                guard let number = lua.number(at: argument) else { throw lua.typeError(argument, expected: "number") }
                argument += 1
                let value = lua.isInteger(argument - 1) ? (lua.integer(at: argument - 1) ?? 0) : Int(exactly: number.rounded(.towardZero)) ?? 0
                let word = UInt32(truncatingIfNeeded: value)
                var bytes = (0..<size).map { $0 < 4 ? UInt8(truncatingIfNeeded: word >> (8 * UInt32($0))) : 0 }
                if format.bigEndian { bytes.reverse() }
                output += bytes
            case UInt8(ascii: "x"):
                output.append(0)
            case UInt8(ascii: "f"), UInt8(ascii: "d"):
                guard let number = lua.number(at: argument) else { throw lua.typeError(argument, expected: "number") }
                argument += 1
                var bytes: [UInt8] = option == UInt8(ascii: "f")
                    ? withUnsafeBytes(of: Float(number).bitPattern.littleEndian, Array.init)
                    : withUnsafeBytes(of: number.bitPattern.littleEndian, Array.init)
                if format.bigEndian { bytes.reverse() }
                output += bytes
            case UInt8(ascii: "c"), UInt8(ascii: "s"):
                let text = try lua.checkBytes(argument)
                argument += 1
                if size == 0 { size = text.count }
                guard size >= 0, text.count >= size else { throw .argument(argument, "string too short") }
                output += text.prefix(size)
                if option == UInt8(ascii: "s") { output.append(0) }
            default:
                try Self.control(option, &format, strict: v30)
            }
        }
        lua.push(output)
        return 1
    }

    // MARK: unpack

    /// Lua: struct.unpack(format, string[, init]) — the values, then the next position.
    private func unpack(_ lua: LuaState) throws(LuaError) -> Int32 {
        var format = Format(bytes: try lua.checkBytes(1))
        let data = try lua.checkBytes(2)
        // Wrapping, like the firmware's size_t: any init out of the string fails the check below.
        var position = try lua.optionalInteger(3, default: 1) &- 1
        var values: [Value] = []
        while !format.atEnd {
            let option = format.next()
            var size = try optionSize(option, &format)
            position &+= Self.padding(at: position, format, option, size)
            guard position >= 0, size >= 0, size <= data.count - position else { throw .argument(2, "data string too short") }
            if values.count >= 7_990 { throw .message("too many results") }
            switch option {
            case _ where Self.isInteger(option):
                var bytes = Array(data[position..<position + size])
                if format.bigEndian { bytes.reverse() }
                values.append(integer(bytes, signed: option >= UInt8(ascii: "a")))
            case UInt8(ascii: "x"):
                break
            case UInt8(ascii: "f"):
                var bytes = Array(data[position..<position + 4])
                if format.bigEndian { bytes.reverse() }
                let bits = bytes.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
                values.append(.float(Double(Float(bitPattern: bits))))
            case UInt8(ascii: "d"):
                var bytes = Array(data[position..<position + 8])
                if format.bigEndian { bytes.reverse() }
                let bits = bytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
                values.append(.float(Double(bitPattern: bits)))
            case UInt8(ascii: "c"):
                if size == 0 {
                    guard let last = values.last, let count = last.count else {
                        throw .message("format `c0' needs a previous size")
                    }
                    values.removeLast()
                    size = count
                    guard size >= 0, size <= data.count - position else { throw .argument(2, "data string too short") }
                }
                values.append(.bytes(Array(data[position..<position + size])))
            case UInt8(ascii: "s"):
                guard let end = data[position...].firstIndex(of: 0) else { throw .message("unfinished string in data") }
                values.append(.bytes(Array(data[position..<end])))
                size = end - position + 1
            default:
                try Self.control(option, &format, strict: v30)
            }
            position += size
        }
        // The firmware checks the stack per value (luaL_checkstack, "too many results").
        guard lua.checkStack(Int32(values.count + 1)) else { throw .message("too many results") }
        for value in values {
            switch value {
            case .integer(let v): lua.push(v)
            case .float(let v): lua.push(v)
            case .bytes(let v): lua.push(v)
            }
        }
        lua.push(position &+ 1)
        return Int32(values.count + 1)
    }

    enum Value {
        case integer(Int)
        case float(Double)
        case bytes([UInt8])

        var count: Int? {
            switch self {
            case .integer(let v): v
            case .float(let v): Int(exactly: v.rounded(.towardZero))
            case .bytes: nil
            }
        }
    }

    /// Little-endian `bytes` as the device's integer: the low 32 bits (2.2) or 64 (3.0).
    private func integer(_ bytes: [UInt8], signed: Bool) -> Value {
        let size = bytes.count
        if !v30 {
            var word: UInt32 = 0
            for (i, byte) in bytes.enumerated() where i < 4 { word |= UInt32(byte) << (8 * UInt32(i)) }
            if signed {
                if size >= 4 { return .integer(Int(Int32(bitPattern: word))) }
                let mask = UInt32.max << UInt32(size * 8 - 1)
                if word & mask != 0 { word |= mask }
                return .integer(Int(Int32(bitPattern: word)))
            }
            return .integer(Int(word))
        }
        var word: UInt64 = 0
        for (i, byte) in bytes.enumerated() where i < 8 { word |= UInt64(byte) << (8 * UInt64(i)) }
        let value: Int64
        if signed {
            if size < 8 {
                let mask = UInt64.max << UInt64(size * 8 - 1)
                if word & mask != 0 { word |= mask }
            }
            value = Int64(bitPattern: word)
        } else if word > UInt64(Int64.max) {
            return .float(Double(word))
        } else {
            value = Int64(word)
        }
        return Int64(Int32.min)...Int64(Int32.max) ~= value ? .integer(Int(value)) : .float(Double(value))
    }

    // MARK: size

    /// Lua: struct.size(format) — the packed size; `s` and `c0` have none.
    private func size(_ lua: LuaState) throws(LuaError) -> Int32 {
        var format = Format(bytes: try lua.checkBytes(1))
        var position = 0
        while !format.atEnd {
            let option = format.next()
            let size = try optionSize(option, &format)
            position += Self.padding(at: position, format, option, size)
            if option == UInt8(ascii: "s") { throw .argument(1, "option 's' has no fixed size") }
            if option == UInt8(ascii: "c") && size == 0 { throw .argument(1, "option 'c0' has no fixed size") }
            let isAlphanumeric = (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(option | 0x20)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(option)
            if !isAlphanumeric { try Self.control(option, &format, strict: v30) }
            position += size
        }
        lua.push(position)
        return 1
    }
}
