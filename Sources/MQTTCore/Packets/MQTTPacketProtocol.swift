import NIOCore

/// What every packet struct provides: its type, encoding and decoding.
public protocol MQTTPacketProtocol: Sendable, Equatable {
    /// The packet type this struct encodes.
    static var packetType: MQTTPacketType { get }
    /// Appends the complete packet (fixed header included) to `buffer`.
    func write(to buffer: inout ByteBuffer)
    /// Decodes the packet from its body (the `remaining length` bytes after the fixed header).
    /// `flags` is the low nibble of the first header byte, already checked where it is fixed.
    static func read(from body: inout ByteBuffer, flags: UInt8) throws -> Self
}

/// A packet whose body is just a packet identifier (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK).
public protocol MQTTIdentifierPacket: MQTTPacketProtocol {
    var packetID: UInt16 { get }
    init(packetID: UInt16)
}

extension MQTTIdentifierPacket {
    public func write(to buffer: inout ByteBuffer) {
        MQTTSerializer.writeFixedHeader(
            Self.packetType, flags: Self.packetType.requiredFlags ?? 0, remainingLength: 2, to: &buffer)
        buffer.writeInteger(packetID)
    }

    public static func read(from body: inout ByteBuffer, flags: UInt8) throws -> Self {
        let id = try MQTTSerializer.readPacketID(from: &body, packetType)
        try MQTTSerializer.expectEnd(body, packetType)
        return Self(packetID: id)
    }
}

/// A packet without variable header or payload (PINGREQ, PINGRESP, DISCONNECT).
public protocol MQTTEmptyPacket: MQTTPacketProtocol {
    init()
}

extension MQTTEmptyPacket {
    public func write(to buffer: inout ByteBuffer) {
        MQTTSerializer.writeFixedHeader(Self.packetType, remainingLength: 0, to: &buffer)
    }

    public static func read(from body: inout ByteBuffer, flags: UInt8) throws -> Self {
        try MQTTSerializer.expectEnd(body, packetType)
        return Self()
    }
}
