import NIOCore

/// Why a connection attempt failed, with the firmware's reason codes.
public struct MQTTConnectFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// -5 TCP refused/unreachable/timed out or TLS failure; -4 first packet not a CONNACK;
    /// -3 DNS failure; -2 no CONNACK within the timeout after CONNECT was sent;
    /// -1 CONNECT not written within the timeout; 1–5 (or other non-zero) CONNACK return code.
    public var code: Int
    /// A human-readable reason (always set for -5 and -3; the module prints it on stderr).
    public var reason: String?

    public init(code: Int, reason: String? = nil) {
        self.code = code
        self.reason = reason
    }

    public static let serverNotFound = -5
    public static let notAConnAck = -4
    public static let dnsFailure = -3
    public static let connAckTimeout = -2
    public static let connectSendTimeout = -1

    public var description: String {
        "connect failed (\(code))" + (reason.map { ": \($0)" } ?? "")
    }
}

/// Why an established connection (TCP, or TLS, up) ended.
public enum MQTTCloseCause: Sendable, Equatable {
    /// The broker closed the connection (FIN).
    case remoteClosed
    /// A reset or other I/O error (the text describes it). Firmware 3.0 reports connfail(-5)
    /// before offline for this.
    case ioError(String)
    /// A PINGREQ was still unanswered at the next keepalive expiry.
    case keepaliveTimeout
    /// The broker violated MQTT 3.1.1; the text says how.
    case protocolError(String)
    /// The connection was closed because the connect sequence failed (the
    /// `.connectFailed` event with this code came first).
    case connectFailed(Int)
    /// `close(.queued)` or `close(.immediate)`: the DISCONNECT was written and TCP closed.
    /// A 2.2-profile module does not fire `offline` for `.immediate`.
    case localClose
}

/// An incoming application message (or the first part of an oversized one).
public struct MQTTMessage: Sendable, Equatable {
    public var topic: ByteBuffer
    public var payload: ByteBuffer
    public var qos: UInt8
    public var retain: Bool
    public var dup: Bool
    public var packetID: UInt16?

    public init(
        topic: ByteBuffer, payload: ByteBuffer, qos: UInt8, retain: Bool, dup: Bool, packetID: UInt16?
    ) {
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.packetID = packetID
    }
}

/// Events delivered to the owner of an `MQTTClient`, on its event loop, in order, never
/// synchronously inside the API call that caused them.
public enum MQTTClientEvent: Sendable, Equatable {
    /// TCP (and TLS, if used) connected. The firmware calls this state "connected".
    /// CONNECT is being sent.
    case tcpConnected
    /// A CONNACK with return code 0 arrived. Queued requests go out now.
    case connected(sessionPresent: Bool)
    /// The connect attempt failed. For -1, -2, -4 and 1–5 the TCP connection had been up:
    /// it is being closed, and `.closed(.connectFailed(code))` follows. For -3 and -5 nothing
    /// follows.
    case connectFailed(MQTTConnectFailure)
    /// An incoming PUBLISH (delivered once, also for QoS 2).
    case message(MQTTMessage)
    /// An incoming PUBLISH larger than `maxIncomingPacketSize`: the payload is the part
    /// within the first `maxIncomingPacketSize` bytes of the packet. QoS 1/2 is still
    /// acknowledged. `packetSize` is the whole packet's size.
    case oversizedMessage(MQTTMessage, packetSize: Int)
    /// A publish completed: QoS 0 when handed to the network (packet id nil), QoS 1 on
    /// PUBACK, QoS 2 on PUBCOMP.
    case published(packetID: UInt16?)
    /// SUBACK for a SUBSCRIBE, with the broker's return codes (0x80 = failure).
    case subscribed(packetID: UInt16, returnCodes: [UInt8])
    /// UNSUBACK for an UNSUBSCRIBE.
    case unsubscribed(packetID: UInt16)
    /// A connection that had been established (`.tcpConnected`) has closed; the queue has
    /// been discarded and `connect` may be called again.
    case closed(MQTTCloseCause)
}

/// How `MQTTClient.close(_:)` ends a connection.
public enum MQTTCloseMode: Sendable, Equatable {
    /// Firmware 2.2: DISCONNECT written at once, ahead of the queue; the queue is discarded;
    /// TCP is closed after the DISCONNECT has been flushed. All events still pending are
    /// dropped; the only later event is `.closed(.localClose)` when TCP has closed
    /// (a 2.2 module suppresses `offline` for it).
    case immediate
    /// Firmware 3.0: DISCONNECT appended at the queue tail; it goes out once everything ahead
    /// has been sent or acknowledged; then TCP is closed and `.closed(.localClose)` follows.
    case queued
}
