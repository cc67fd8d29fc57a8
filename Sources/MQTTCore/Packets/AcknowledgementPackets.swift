import NIOCore

/// PUBACK (§3.4): acknowledges a QoS 1 PUBLISH.
public struct PubAckPacket: MQTTIdentifierPacket {
    public static let packetType = MQTTPacketType.pubAck
    public var packetID: UInt16
    public init(packetID: UInt16) { self.packetID = packetID }
}

/// PUBREC (§3.5): first reply to a QoS 2 PUBLISH.
public struct PubRecPacket: MQTTIdentifierPacket {
    public static let packetType = MQTTPacketType.pubRec
    public var packetID: UInt16
    public init(packetID: UInt16) { self.packetID = packetID }
}

/// PUBREL (§3.6): answers a PUBREC; flags 0b0010.
public struct PubRelPacket: MQTTIdentifierPacket {
    public static let packetType = MQTTPacketType.pubRel
    public var packetID: UInt16
    public init(packetID: UInt16) { self.packetID = packetID }
}

/// PUBCOMP (§3.7): completes a QoS 2 flow.
public struct PubCompPacket: MQTTIdentifierPacket {
    public static let packetType = MQTTPacketType.pubComp
    public var packetID: UInt16
    public init(packetID: UInt16) { self.packetID = packetID }
}

/// UNSUBACK (§3.11).
public struct UnsubAckPacket: MQTTIdentifierPacket {
    public static let packetType = MQTTPacketType.unsubAck
    public var packetID: UInt16
    public init(packetID: UInt16) { self.packetID = packetID }
}

/// PINGREQ (§3.12).
public struct PingReqPacket: MQTTEmptyPacket {
    public static let packetType = MQTTPacketType.pingReq
    public init() {}
}

/// PINGRESP (§3.13).
public struct PingRespPacket: MQTTEmptyPacket {
    public static let packetType = MQTTPacketType.pingResp
    public init() {}
}

/// DISCONNECT (§3.14).
public struct DisconnectPacket: MQTTEmptyPacket {
    public static let packetType = MQTTPacketType.disconnect
    public init() {}
}
