import NIOCore

/// Any of the 14 MQTT 3.1.1 packets.
public enum MQTTPacket: Sendable, Equatable {
    case connect(ConnectPacket)
    case connAck(ConnAckPacket)
    case publish(PublishPacket)
    case pubAck(PubAckPacket)
    case pubRec(PubRecPacket)
    case pubRel(PubRelPacket)
    case pubComp(PubCompPacket)
    case subscribe(SubscribePacket)
    case subAck(SubAckPacket)
    case unsubscribe(UnsubscribePacket)
    case unsubAck(UnsubAckPacket)
    case pingReq
    case pingResp
    case disconnect

    /// The packet's type.
    public var type: MQTTPacketType {
        switch self {
        case .connect: return .connect
        case .connAck: return .connAck
        case .publish: return .publish
        case .pubAck: return .pubAck
        case .pubRec: return .pubRec
        case .pubRel: return .pubRel
        case .pubComp: return .pubComp
        case .subscribe: return .subscribe
        case .subAck: return .subAck
        case .unsubscribe: return .unsubscribe
        case .unsubAck: return .unsubAck
        case .pingReq: return .pingReq
        case .pingResp: return .pingResp
        case .disconnect: return .disconnect
        }
    }

    /// The packet identifier, for the types that carry one.
    public var packetID: UInt16? {
        switch self {
        case .publish(let p): return p.packetID
        case .pubAck(let p): return p.packetID
        case .pubRec(let p): return p.packetID
        case .pubRel(let p): return p.packetID
        case .pubComp(let p): return p.packetID
        case .subscribe(let p): return p.packetID
        case .subAck(let p): return p.packetID
        case .unsubscribe(let p): return p.packetID
        case .unsubAck(let p): return p.packetID
        default: return nil
        }
    }

    /// Appends the encoded packet to `buffer`.
    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .connect(let p): p.write(to: &buffer)
        case .connAck(let p): p.write(to: &buffer)
        case .publish(let p): p.write(to: &buffer)
        case .pubAck(let p): p.write(to: &buffer)
        case .pubRec(let p): p.write(to: &buffer)
        case .pubRel(let p): p.write(to: &buffer)
        case .pubComp(let p): p.write(to: &buffer)
        case .subscribe(let p): p.write(to: &buffer)
        case .subAck(let p): p.write(to: &buffer)
        case .unsubscribe(let p): p.write(to: &buffer)
        case .unsubAck(let p): p.write(to: &buffer)
        case .pingReq: PingReqPacket().write(to: &buffer)
        case .pingResp: PingRespPacket().write(to: &buffer)
        case .disconnect: DisconnectPacket().write(to: &buffer)
        }
    }

    /// The packet encoded into a new buffer.
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 16)
        write(to: &buffer)
        return buffer
    }

    /// Decodes a packet body. `flags` must already have been checked with
    /// `MQTTPacketDecoder.validate(type:flags:)`.
    public static func read(type: MQTTPacketType, flags: UInt8, body: inout ByteBuffer) throws -> MQTTPacket {
        switch type {
        case .connect: return .connect(try .read(from: &body, flags: flags))
        case .connAck: return .connAck(try .read(from: &body, flags: flags))
        case .publish: return .publish(try .read(from: &body, flags: flags))
        case .pubAck: return .pubAck(try .read(from: &body, flags: flags))
        case .pubRec: return .pubRec(try .read(from: &body, flags: flags))
        case .pubRel: return .pubRel(try .read(from: &body, flags: flags))
        case .pubComp: return .pubComp(try .read(from: &body, flags: flags))
        case .subscribe: return .subscribe(try .read(from: &body, flags: flags))
        case .subAck: return .subAck(try .read(from: &body, flags: flags))
        case .unsubscribe: return .unsubscribe(try .read(from: &body, flags: flags))
        case .unsubAck: return .unsubAck(try .read(from: &body, flags: flags))
        case .pingReq: _ = try PingReqPacket.read(from: &body, flags: flags); return .pingReq
        case .pingResp: _ = try PingRespPacket.read(from: &body, flags: flags); return .pingResp
        case .disconnect: _ = try DisconnectPacket.read(from: &body, flags: flags); return .disconnect
        }
    }
}
