import MQTTCore
import NIOCore

/// A deterministic random generator for property tests (SplitMix64).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension ByteBuffer {
    /// The readable bytes as an array.
    public var bytes: [UInt8] { Array(readableBytesView) }
}

extension MQTTPacket {
    /// The encoded bytes.
    public var bytes: [UInt8] { encoded().bytes }
}

/// Packet constructors with byte-string arguments, for tests.
public enum Packets {
    public static func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    public static func publish(
        _ topic: String, _ payload: String, qos: UInt8 = 0, retain: Bool = false, dup: Bool = false, id: UInt16? = nil
    ) -> MQTTPacket {
        .publish(PublishPacket(
            topic: ByteBuffer(string: topic), payload: ByteBuffer(string: payload), qos: qos, retain: retain,
            dup: dup, packetID: id))
    }

    public static func publish(
        _ topic: String, bytes payload: [UInt8], qos: UInt8 = 0, retain: Bool = false, id: UInt16? = nil
    ) -> MQTTPacket {
        .publish(PublishPacket(
            topic: ByteBuffer(string: topic), payload: ByteBuffer(bytes: payload), qos: qos, retain: retain,
            packetID: id))
    }

    public static func connAck(_ code: UInt8 = 0, sessionPresent: Bool = false) -> MQTTPacket {
        .connAck(ConnAckPacket(sessionPresent: sessionPresent, returnCode: code))
    }

    public static func subscribe(_ id: UInt16, _ topics: [(String, UInt8)]) -> MQTTPacket {
        .subscribe(SubscribePacket(
            packetID: id, subscriptions: topics.map { .init(topicFilter: Array($0.0.utf8), qos: $0.1) }))
    }

    public static func unsubscribe(_ id: UInt16, _ topics: [String]) -> MQTTPacket {
        .unsubscribe(UnsubscribePacket(packetID: id, topicFilters: topics.map { Array($0.utf8) }))
    }

    public static func subAck(_ id: UInt16, _ codes: [UInt8]) -> MQTTPacket {
        .subAck(SubAckPacket(packetID: id, returnCodes: codes))
    }

    public static func pubAck(_ id: UInt16) -> MQTTPacket { .pubAck(PubAckPacket(packetID: id)) }
    public static func pubRec(_ id: UInt16) -> MQTTPacket { .pubRec(PubRecPacket(packetID: id)) }
    public static func pubRel(_ id: UInt16) -> MQTTPacket { .pubRel(PubRelPacket(packetID: id)) }
    public static func pubComp(_ id: UInt16) -> MQTTPacket { .pubComp(PubCompPacket(packetID: id)) }
    public static func unsubAck(_ id: UInt16) -> MQTTPacket { .unsubAck(UnsubAckPacket(packetID: id)) }

    /// Decodes all complete packets in `bytes` (throws on a protocol error).
    public static func decodeAll(_ bytes: [UInt8], maxPacketSize: Int? = nil) throws -> [MQTTInbound] {
        var decoder = MQTTPacketDecoder(maxPacketSize: maxPacketSize)
        var buffer = ByteBuffer(bytes: bytes)
        var items: [MQTTInbound] = []
        while let item = try decoder.next(from: &buffer) { items.append(item) }
        return items
    }
}
