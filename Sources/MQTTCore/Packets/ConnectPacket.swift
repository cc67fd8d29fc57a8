import NIOCore

/// CONNECT (client → server, MQTT 3.1.1 §3.1). Protocol name `MQTT`, level 4.
public struct ConnectPacket: MQTTPacketProtocol {
    public static let packetType = MQTTPacketType.connect

    /// The last will, sent by the broker if the connection ends without DISCONNECT.
    public struct Will: Sendable, Equatable {
        public var topic: [UInt8]
        public var message: [UInt8]
        /// Will QoS; only the low two bits are encoded (`qos & 3`).
        public var qos: UInt8
        public var retain: Bool

        public init(topic: [UInt8], message: [UInt8], qos: UInt8 = 0, retain: Bool = false) {
            self.topic = topic
            self.message = message
            self.qos = qos
            self.retain = retain
        }
    }

    public var clientID: [UInt8]
    public var keepAlive: UInt16
    public var cleanSession: Bool
    public var will: Will?
    /// Omitted from the packet when nil.
    public var username: [UInt8]?
    /// Omitted from the packet when nil (also without a username, as the firmware does).
    public var password: [UInt8]?

    public init(
        clientID: [UInt8], keepAlive: UInt16, cleanSession: Bool, will: Will? = nil,
        username: [UInt8]? = nil, password: [UInt8]? = nil
    ) {
        self.clientID = clientID
        self.keepAlive = keepAlive
        self.cleanSession = cleanSession
        self.will = will
        self.username = username
        self.password = password
    }

    var connectFlags: UInt8 {
        var flags: UInt8 = 0
        if username != nil { flags |= 0x80 }
        if password != nil { flags |= 0x40 }
        if let will {
            flags |= 0x04 | ((will.qos & 3) << 3)
            if will.retain { flags |= 0x20 }
        }
        if cleanSession { flags |= 0x02 }
        return flags
    }

    public func write(to buffer: inout ByteBuffer) {
        var length = 10 + 2 + clientID.count
        if let will { length += 4 + will.topic.count + will.message.count }
        if let username { length += 2 + username.count }
        if let password { length += 2 + password.count }
        MQTTSerializer.writeFixedHeader(.connect, remainingLength: length, to: &buffer)
        buffer.writeBytes([0, 4, 0x4D, 0x51, 0x54, 0x54, 4, connectFlags])
        buffer.writeInteger(keepAlive)
        MQTTSerializer.writeLengthPrefixed(clientID, to: &buffer)
        if let will {
            MQTTSerializer.writeLengthPrefixed(will.topic, to: &buffer)
            MQTTSerializer.writeLengthPrefixed(will.message, to: &buffer)
        }
        if let username { MQTTSerializer.writeLengthPrefixed(username, to: &buffer) }
        if let password { MQTTSerializer.writeLengthPrefixed(password, to: &buffer) }
    }

    public static func read(from body: inout ByteBuffer, flags: UInt8) throws -> ConnectPacket {
        let name = try MQTTSerializer.readLengthPrefixedBytes(from: &body, "CONNECT protocol name")
        guard name == Array("MQTT".utf8) else { throw MQTTProtocolError("CONNECT protocol name is not MQTT") }
        let level = try MQTTSerializer.readUInt8(from: &body, "CONNECT protocol level")
        guard level == 4 else { throw MQTTProtocolError("CONNECT protocol level \(level), expected 4") }
        let connectFlags = try MQTTSerializer.readUInt8(from: &body, "CONNECT flags")
        guard connectFlags & 0x01 == 0 else { throw MQTTProtocolError("CONNECT reserved flag set") }
        let keepAlive = try MQTTSerializer.readUInt16(from: &body, "CONNECT keep alive")
        let clientID = try MQTTSerializer.readUTF8Bytes(from: &body, "CONNECT client identifier")
        var will: Will?
        let willQoS = (connectFlags >> 3) & 3
        if connectFlags & 0x04 != 0 {
            guard willQoS != 3 else { throw MQTTProtocolError("CONNECT will QoS 3") }
            let topic = try MQTTSerializer.readUTF8Bytes(from: &body, "CONNECT will topic")
            let message = try MQTTSerializer.readLengthPrefixedBytes(from: &body, "CONNECT will message")
            will = Will(topic: topic, message: message, qos: willQoS, retain: connectFlags & 0x20 != 0)
        } else if connectFlags & 0x38 != 0 {
            throw MQTTProtocolError("CONNECT will QoS or retain set without will flag")
        }
        let username = connectFlags & 0x80 != 0
            ? try MQTTSerializer.readUTF8Bytes(from: &body, "CONNECT user name") : nil
        let password = connectFlags & 0x40 != 0
            ? try MQTTSerializer.readLengthPrefixedBytes(from: &body, "CONNECT password") : nil
        try MQTTSerializer.expectEnd(body, .connect)
        return ConnectPacket(
            clientID: clientID, keepAlive: keepAlive, cleanSession: connectFlags & 0x02 != 0,
            will: will, username: username, password: password)
    }
}
