import NIOCore

/// An incoming PUBLISH larger than the configured maximum packet size: its topic and the
/// payload bytes that lie within the first `limit` bytes of the packet. The rest of the
/// packet was skipped without being buffered.
public struct MQTTOversizedPublish: Sendable, Equatable {
    public var topic: ByteBuffer
    /// The payload bytes within the first `limit` bytes of the packet (may be empty).
    public var partialPayload: ByteBuffer
    public var qos: UInt8
    public var retain: Bool
    public var dup: Bool
    public var packetID: UInt16?
    /// The whole packet's size on the wire (fixed header included).
    public var packetSize: Int

    public init(
        topic: ByteBuffer, partialPayload: ByteBuffer, qos: UInt8, retain: Bool, dup: Bool,
        packetID: UInt16?, packetSize: Int
    ) {
        self.topic = topic
        self.partialPayload = partialPayload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packetID = packetID
        self.packetSize = packetSize
    }
}

/// One item produced by `MQTTPacketDecoder`.
public enum MQTTInbound: Sendable, Equatable {
    case packet(MQTTPacket)
    case oversizedPublish(MQTTOversizedPublish)
}

/// Incremental MQTT 3.1.1 decoder: accepts any fragmentation and any number of packets per
/// read, rejects malformed packets with `MQTTProtocolError`, and never allocates according
/// to an announced length (a packet is only accumulated as its bytes arrive).
///
/// With `maxPacketSize` set, a PUBLISH whose total size exceeds it is reported as
/// `.oversizedPublish` once its first `maxPacketSize` bytes (and its topic) have arrived,
/// and the remainder is skipped as it arrives. Decoded payloads are slices of the receive
/// buffer (no copy).
public struct MQTTPacketDecoder: Sendable {
    /// PUBLISH packets larger than this (in bytes, fixed header included) are reported as
    /// oversized. nil: no limit.
    public var maxPacketSize: Int?
    private var bytesToSkip = 0

    public init(maxPacketSize: Int? = nil) {
        self.maxPacketSize = maxPacketSize
    }

    /// Checks the flag nibble of a fixed header against MQTT 3.1.1 §2.2.2.
    public static func validate(type: MQTTPacketType, flags: UInt8) throws {
        if let required = type.requiredFlags {
            guard flags == required else {
                throw MQTTProtocolError("\(type) with reserved flag bits \(flags), expected \(required)")
            }
        } else {
            try PublishPacket.validate(flags: flags)
        }
    }

    /// The exact remaining length of fixed-size packet types.
    static func fixedRemainingLength(_ type: MQTTPacketType) -> Int? {
        switch type {
        case .connAck, .pubAck, .pubRec, .pubRel, .pubComp, .unsubAck: return 2
        case .pingReq, .pingResp, .disconnect: return 0
        default: return nil
        }
    }

    /// Decodes the next item from `buffer`, consuming its bytes, or returns nil when more
    /// bytes are needed (having consumed only bytes of an oversized packet being skipped).
    public mutating func next(from buffer: inout ByteBuffer) throws -> MQTTInbound? {
        while true {
            if bytesToSkip > 0 {
                let count = min(bytesToSkip, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: count)
                bytesToSkip -= count
                if bytesToSkip > 0 { return nil }
            }
            let start = buffer.readerIndex
            guard let first = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
            guard let type = MQTTPacketType(rawValue: first >> 4) else {
                throw MQTTProtocolError("unknown packet type \(first >> 4)")
            }
            let flags = first & 0x0F
            try Self.validate(type: type, flags: flags)
            guard case .value(let remaining, let lengthBytes) =
                try MQTTSerializer.peekVariableLength(in: buffer, at: start + 1)
            else { return nil }
            if let fixed = Self.fixedRemainingLength(type), fixed != remaining {
                throw MQTTProtocolError("\(type) with remaining length \(remaining), expected \(fixed)")
            }
            let headerSize = 1 + lengthBytes
            let total = headerSize + remaining
            if type == .publish, let limit = maxPacketSize, total > limit {
                guard let oversized = try readOversized(
                    from: &buffer, flags: flags, headerSize: headerSize, total: total, limit: limit)
                else { return nil }
                return .oversizedPublish(oversized)
            }
            guard buffer.readableBytes >= total else { return nil }
            buffer.moveReaderIndex(forwardBy: headerSize)
            var body = buffer.readSlice(length: remaining)!
            return .packet(try MQTTPacket.read(type: type, flags: flags, body: &body))
        }
    }

    private mutating func readOversized(
        from buffer: inout ByteBuffer, flags: UInt8, headerSize: Int, total: Int, limit: Int
    ) throws -> MQTTOversizedPublish? {
        let start = buffer.readerIndex
        let qos = (flags >> 1) & 3
        let remaining = total - headerSize
        guard remaining >= 2 else {
            throw MQTTProtocolError("PUBLISH topic length exceeds the remaining length")
        }
        guard let topicLength = buffer.getInteger(at: start + headerSize, as: UInt16.self) else { return nil }
        let topicEnd = headerSize + 2 + Int(topicLength) + (qos > 0 ? 2 : 0)
        guard topicEnd <= total else {
            throw MQTTProtocolError("PUBLISH topic exceeds the remaining length")
        }
        let needed = min(total, max(limit, topicEnd))
        guard buffer.readableBytes >= needed else { return nil }
        buffer.moveReaderIndex(forwardBy: headerSize)
        let topic = try MQTTSerializer.readUTF8Slice(from: &buffer, "PUBLISH topic")
        let id = qos > 0 ? try MQTTSerializer.readPacketID(from: &buffer, .publish) : nil
        let partialCount = max(0, min(limit, total) - topicEnd)
        let partial = buffer.readSlice(length: partialCount)!
        bytesToSkip = total - topicEnd - partialCount
        let count = min(bytesToSkip, buffer.readableBytes)
        buffer.moveReaderIndex(forwardBy: count)
        bytesToSkip -= count
        return MQTTOversizedPublish(
            topic: topic, partialPayload: partial, qos: qos, retain: flags & 1 != 0,
            dup: flags & 0x08 != 0, packetID: id, packetSize: total)
    }
}
