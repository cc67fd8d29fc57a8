import NIOCore

/// PUBLISH (both directions, §3.3). Topic and payload are bytes.
public struct PublishPacket: MQTTPacketProtocol {
    public static let packetType = MQTTPacketType.publish

    public var topic: ByteBuffer
    public var payload: ByteBuffer
    /// QoS as sent in the header (`qos & 3`). Decoding rejects 3; encoding does not (the
    /// firmware sends whatever the script asked for).
    public var qos: UInt8
    public var retain: Bool
    public var dup: Bool
    /// Present iff `qos > 0`.
    public var packetID: UInt16?

    public init(
        topic: ByteBuffer, payload: ByteBuffer, qos: UInt8 = 0, retain: Bool = false,
        dup: Bool = false, packetID: UInt16? = nil
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos & 3
        self.retain = retain
        self.dup = dup
        self.packetID = packetID
    }

    var flags: UInt8 {
        (dup ? 0x08 : 0) | (qos & 3) << 1 | (retain ? 1 : 0)
    }

    /// The total encoded size (fixed header included).
    public var encodedSize: Int {
        let remaining = 2 + topic.readableBytes + (qos > 0 ? 2 : 0) + payload.readableBytes
        return 1 + MQTTSerializer.variableLengthSize(remaining) + remaining
    }

    public func write(to buffer: inout ByteBuffer) {
        let remaining = 2 + topic.readableBytes + (qos > 0 ? 2 : 0) + payload.readableBytes
        precondition(remaining <= MQTTSerializer.maxRemainingLength, "remaining length out of range")
        precondition(topic.readableBytes <= 0xFFFF, "field longer than 65535 bytes")
        let size = 1 + MQTTSerializer.variableLengthSize(remaining) + remaining
        // One pass over one region: this is the hot path of every publish (bench/NOTES.md §4);
        // field-by-field ByteBuffer writes cost several times as much.
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var at = 0
            func put(_ byte: UInt8) {
                out[at] = byte
                at += 1
            }
            func put(_ bytes: ByteBuffer) {
                bytes.withUnsafeReadableBytes { source in
                    UnsafeMutableRawBufferPointer(rebasing: out[at..<(at + source.count)]).copyMemory(from: source)
                    at += source.count
                }
            }
            put(MQTTPacketType.publish.rawValue << 4 | flags)
            var length = remaining
            repeat {
                put(UInt8(length & 0x7F) | (length > 0x7F ? 0x80 : 0))
                length >>= 7
            } while length > 0
            put(UInt8(topic.readableBytes >> 8))
            put(UInt8(topic.readableBytes & 0xFF))
            put(topic)
            if qos > 0 {
                let id = packetID ?? 0
                put(UInt8(id >> 8))
                put(UInt8(id & 0xFF))
            }
            put(payload)
            return at
        }
    }

    /// Checks the PUBLISH flag nibble: QoS 3 is malformed.
    static func validate(flags: UInt8) throws {
        guard (flags >> 1) & 3 != 3 else { throw MQTTProtocolError("PUBLISH with QoS 3") }
    }

    public static func read(from body: inout ByteBuffer, flags: UInt8) throws -> PublishPacket {
        try validate(flags: flags)
        let qos = (flags >> 1) & 3
        let topic = try MQTTSerializer.readUTF8Slice(from: &body, "PUBLISH topic")
        let id = qos > 0 ? try MQTTSerializer.readPacketID(from: &body, .publish) : nil
        let payload = body.readSlice(length: body.readableBytes)!
        return PublishPacket(
            topic: topic, payload: payload, qos: qos, retain: flags & 1 != 0,
            dup: flags & 0x08 != 0, packetID: id)
    }
}
