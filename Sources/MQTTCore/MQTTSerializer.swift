import NIOCore

/// Static helpers for the MQTT wire format: the variable-length integer, 16-bit fields and
/// length-prefixed strings and binary data.
public enum MQTTSerializer {
    /// The largest value the 4-byte variable-length integer can hold.
    public static let maxRemainingLength = 268_435_455

    /// Number of bytes `value` takes as a variable-length integer.
    public static func variableLengthSize(_ value: Int) -> Int {
        switch value {
        case ..<128: return 1
        case ..<16_384: return 2
        case ..<2_097_152: return 3
        default: return 4
        }
    }

    /// Writes `value` (0...maxRemainingLength) as a variable-length integer.
    public static func writeVariableLength(_ value: Int, to buffer: inout ByteBuffer) {
        precondition(value >= 0 && value <= maxRemainingLength, "remaining length out of range")
        var value = value
        repeat {
            var byte = UInt8(value & 0x7F)
            value >>= 7
            if value > 0 { byte |= 0x80 }
            buffer.writeInteger(byte)
        } while value > 0
    }

    /// Result of looking at a variable-length integer in a buffer without consuming it.
    public enum VariableLength: Equatable, Sendable {
        /// More bytes are needed.
        case incomplete
        /// The value and how many bytes encode it.
        case value(Int, byteCount: Int)
    }

    /// Reads a variable-length integer at `index` without moving the reader index.
    /// Throws if a fifth byte would be needed.
    public static func peekVariableLength(in buffer: ByteBuffer, at index: Int) throws -> VariableLength {
        var value = 0
        var multiplier = 1
        for position in 0..<4 {
            guard let byte: UInt8 = buffer.getInteger(at: index + position) else { return .incomplete }
            value += Int(byte & 0x7F) * multiplier
            if byte & 0x80 == 0 { return .value(value, byteCount: position + 1) }
            multiplier *= 128
        }
        throw MQTTProtocolError("remaining length longer than 4 bytes")
    }

    /// Writes a 16-bit length prefix and `bytes`.
    public static func writeLengthPrefixed(_ bytes: [UInt8], to buffer: inout ByteBuffer) {
        precondition(bytes.count <= 0xFFFF, "field longer than 65535 bytes")
        buffer.writeInteger(UInt16(bytes.count))
        buffer.writeBytes(bytes)
    }

    /// Writes a 16-bit length prefix and the readable bytes of `bytes`.
    public static func writeLengthPrefixed(_ bytes: ByteBuffer, to buffer: inout ByteBuffer) {
        precondition(bytes.readableBytes <= 0xFFFF, "field longer than 65535 bytes")
        buffer.writeInteger(UInt16(bytes.readableBytes))
        buffer.writeImmutableBuffer(bytes)
    }

    /// Reads a 16-bit integer or throws "`what` exceeds the remaining length". `what` is
    /// only evaluated for the error: these run for every field of every packet.
    public static func readUInt16(from buffer: inout ByteBuffer, _ what: @autoclosure () -> String) throws -> UInt16 {
        guard let value = buffer.readInteger(as: UInt16.self) else {
            throw MQTTProtocolError("\(what()) exceeds the remaining length")
        }
        return value
    }

    /// Reads a byte or throws.
    public static func readUInt8(from buffer: inout ByteBuffer, _ what: @autoclosure () -> String) throws -> UInt8 {
        guard let value = buffer.readInteger(as: UInt8.self) else {
            throw MQTTProtocolError("\(what()) exceeds the remaining length")
        }
        return value
    }

    /// Reads a non-zero packet identifier.
    public static func readPacketID(from buffer: inout ByteBuffer, _ type: MQTTPacketType) throws -> UInt16 {
        let id = try readUInt16(from: &buffer, "\(type) packet identifier")
        guard id != 0 else { throw MQTTProtocolError("\(type) with packet identifier 0") }
        return id
    }

    /// Reads a length-prefixed binary field as a slice (no copy).
    public static func readLengthPrefixedSlice(from buffer: inout ByteBuffer, _ what: String) throws -> ByteBuffer {
        let length = try readUInt16(from: &buffer, "\(what) length")
        guard let slice = buffer.readSlice(length: Int(length)) else {
            throw MQTTProtocolError("\(what) exceeds the remaining length")
        }
        return slice
    }

    /// Reads a length-prefixed binary field as bytes.
    public static func readLengthPrefixedBytes(from buffer: inout ByteBuffer, _ what: String) throws -> [UInt8] {
        let slice = try readLengthPrefixedSlice(from: &buffer, what)
        return Array(slice.readableBytesView)
    }

    /// Reads a length-prefixed UTF-8 string field as bytes, validated as MQTT requires.
    public static func readUTF8Bytes(from buffer: inout ByteBuffer, _ what: String) throws -> [UInt8] {
        let slice = try readUTF8Slice(from: &buffer, what)
        return Array(slice.readableBytesView)
    }

    /// Reads a length-prefixed UTF-8 string field as a slice, validated as MQTT requires.
    public static func readUTF8Slice(from buffer: inout ByteBuffer, _ what: String) throws -> ByteBuffer {
        let slice = try readLengthPrefixedSlice(from: &buffer, what)
        // Over raw bytes: the generic walk over a ByteBufferView was a tenth of the
        // cost of receiving a message.
        guard slice.withUnsafeReadableBytes({ isValidMQTTString($0) }) else {
            throw MQTTProtocolError("\(what) is not valid UTF-8 (or contains U+0000)")
        }
        return slice
    }

    /// Whether `bytes` is well-formed UTF-8 without U+0000, surrogates, overlong forms or
    /// code points above U+10FFFF (MQTT 3.1.1 §1.5.3).
    public static func isValidMQTTString<Bytes: Collection>(_ bytes: Bytes) -> Bool where Bytes.Element == UInt8 {
        var iterator = bytes.makeIterator()
        while let first = iterator.next() {
            if first < 0x80 {
                if first == 0 { return false }
                continue
            }
            let count: Int
            var scalar: UInt32
            switch first {
            case 0xC2...0xDF: count = 1; scalar = UInt32(first & 0x1F)
            case 0xE0...0xEF: count = 2; scalar = UInt32(first & 0x0F)
            case 0xF0...0xF4: count = 3; scalar = UInt32(first & 0x07)
            default: return false
            }
            for _ in 0..<count {
                guard let next = iterator.next(), next & 0xC0 == 0x80 else { return false }
                scalar = (scalar << 6) | UInt32(next & 0x3F)
            }
            switch count {
            case 2 where scalar < 0x800: return false
            case 3 where scalar < 0x10000 || scalar > 0x10FFFF: return false
            default: break
            }
            if scalar >= 0xD800 && scalar <= 0xDFFF { return false }
        }
        return true
    }

    /// Writes the fixed header: type, flags and remaining length.
    public static func writeFixedHeader(
        _ type: MQTTPacketType, flags: UInt8 = 0, remainingLength: Int, to buffer: inout ByteBuffer
    ) {
        buffer.writeInteger(type.rawValue << 4 | (flags & 0x0F))
        writeVariableLength(remainingLength, to: &buffer)
    }

    /// Throws unless `buffer` has been read completely.
    public static func expectEnd(_ buffer: ByteBuffer, _ type: MQTTPacketType) throws {
        guard buffer.readableBytes == 0 else {
            throw MQTTProtocolError("\(type) longer than its contents (remaining length inconsistent)")
        }
    }
}
