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
        buffer.reserveCapacity(minimumWritableBytes: 1 + MQTTSerializer.variableLengthSize(remaining) + remaining)
        MQTTSerializer.writeFixedHeader(.publish, flags: flags, remainingLength: remaining, to: &buffer)
        MQTTSerializer.writeLengthPrefixed(topic, to: &buffer)
        if qos > 0 { buffer.writeInteger(packetID ?? 0) }
        buffer.writeImmutableBuffer(payload)
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
