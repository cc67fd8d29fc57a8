import NIOCore

/// CONNACK (server → client, §3.2).
public struct ConnAckPacket: MQTTPacketProtocol {
    public static let packetType = MQTTPacketType.connAck

    public var sessionPresent: Bool
    /// 0 accepted; 1–5 refused (protocol version, identifier, server unavailable,
    /// bad user name or password, not authorized).
    public var returnCode: UInt8

    public init(sessionPresent: Bool = false, returnCode: UInt8 = 0) {
        self.sessionPresent = sessionPresent
        self.returnCode = returnCode
    }

    public func write(to buffer: inout ByteBuffer) {
        MQTTSerializer.writeFixedHeader(.connAck, remainingLength: 2, to: &buffer)
        buffer.writeInteger(UInt8(sessionPresent ? 1 : 0))
        buffer.writeInteger(returnCode)
    }

    public static func read(from body: inout ByteBuffer, flags: UInt8) throws -> ConnAckPacket {
        let acknowledge = try MQTTSerializer.readUInt8(from: &body, "CONNACK flags")
        guard acknowledge & 0xFE == 0 else { throw MQTTProtocolError("CONNACK reserved bits set") }
        let code = try MQTTSerializer.readUInt8(from: &body, "CONNACK return code")
        try MQTTSerializer.expectEnd(body, .connAck)
        return ConnAckPacket(sessionPresent: acknowledge & 1 != 0, returnCode: code)
    }
}
