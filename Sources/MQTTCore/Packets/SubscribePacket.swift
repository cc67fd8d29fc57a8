import NIOCore

/// SUBSCRIBE (client → server, §3.8): one packet id, one or more topic filters.
public struct SubscribePacket: MQTTPacketProtocol {
    public static let packetType = MQTTPacketType.subscribe

    /// A topic filter and its requested QoS (only the low two bits are encoded).
    public struct Subscription: Sendable, Equatable {
        public var topicFilter: [UInt8]
        public var qos: UInt8
        public init(topicFilter: [UInt8], qos: UInt8) {
            self.topicFilter = topicFilter
            self.qos = qos
        }
    }

    public var packetID: UInt16
    public var subscriptions: [Subscription]

    public init(packetID: UInt16, subscriptions: [Subscription]) {
        self.packetID = packetID
        self.subscriptions = subscriptions
    }

    public func write(to buffer: inout ByteBuffer) {
        let length = 2 + subscriptions.reduce(0) { $0 + 3 + $1.topicFilter.count }
        MQTTSerializer.writeFixedHeader(.subscribe, flags: 0b0010, remainingLength: length, to: &buffer)
        buffer.writeInteger(packetID)
        for subscription in subscriptions {
            MQTTSerializer.writeLengthPrefixed(subscription.topicFilter, to: &buffer)
            buffer.writeInteger(subscription.qos & 3)
        }
    }

    public static func read(from body: inout ByteBuffer, flags: UInt8) throws -> SubscribePacket {
        let id = try MQTTSerializer.readPacketID(from: &body, .subscribe)
        var subscriptions: [Subscription] = []
        repeat {
            let filter = try MQTTSerializer.readUTF8Bytes(from: &body, "SUBSCRIBE topic filter")
            let qos = try MQTTSerializer.readUInt8(from: &body, "SUBSCRIBE requested QoS")
            guard qos <= 2 else { throw MQTTProtocolError("SUBSCRIBE requested QoS byte \(qos)") }
            subscriptions.append(Subscription(topicFilter: filter, qos: qos))
        } while body.readableBytes > 0
        return SubscribePacket(packetID: id, subscriptions: subscriptions)
    }
}

/// SUBACK (server → client, §3.9): one return code per requested filter
/// (0, 1, 2 granted QoS; 0x80 failure).
public struct SubAckPacket: MQTTPacketProtocol {
    public static let packetType = MQTTPacketType.subAck

    public var packetID: UInt16
    public var returnCodes: [UInt8]

    public init(packetID: UInt16, returnCodes: [UInt8]) {
        self.packetID = packetID
        self.returnCodes = returnCodes
    }

    public func write(to buffer: inout ByteBuffer) {
        MQTTSerializer.writeFixedHeader(.subAck, remainingLength: 2 + returnCodes.count, to: &buffer)
        buffer.writeInteger(packetID)
        buffer.writeBytes(returnCodes)
    }

    public static func read(from body: inout ByteBuffer, flags: UInt8) throws -> SubAckPacket {
        let id = try MQTTSerializer.readPacketID(from: &body, .subAck)
        guard body.readableBytes > 0 else { throw MQTTProtocolError("SUBACK without return codes") }
        let codes = Array(body.readableBytesView)
        for code in codes where code > 2 && code != 0x80 {
            throw MQTTProtocolError("SUBACK return code \(code)")
        }
        body.moveReaderIndex(forwardBy: codes.count)
        return SubAckPacket(packetID: id, returnCodes: codes)
    }
}

/// UNSUBSCRIBE (client → server, §3.10).
public struct UnsubscribePacket: MQTTPacketProtocol {
    public static let packetType = MQTTPacketType.unsubscribe

    public var packetID: UInt16
    public var topicFilters: [[UInt8]]

    public init(packetID: UInt16, topicFilters: [[UInt8]]) {
        self.packetID = packetID
        self.topicFilters = topicFilters
    }

    public func write(to buffer: inout ByteBuffer) {
        let length = 2 + topicFilters.reduce(0) { $0 + 2 + $1.count }
        MQTTSerializer.writeFixedHeader(.unsubscribe, flags: 0b0010, remainingLength: length, to: &buffer)
        buffer.writeInteger(packetID)
        for filter in topicFilters {
            MQTTSerializer.writeLengthPrefixed(filter, to: &buffer)
        }
    }

    public static func read(from body: inout ByteBuffer, flags: UInt8) throws -> UnsubscribePacket {
        let id = try MQTTSerializer.readPacketID(from: &body, .unsubscribe)
        var filters: [[UInt8]] = []
        repeat {
            filters.append(try MQTTSerializer.readUTF8Bytes(from: &body, "UNSUBSCRIBE topic filter"))
        } while body.readableBytes > 0
        return UnsubscribePacket(packetID: id, topicFilters: filters)
    }
}
