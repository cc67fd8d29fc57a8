import HostNet
import MQTTCore
import NIOCore

/// Settings of an `MQTTClient` that hold for all its connections.
public struct MQTTClientConfiguration: Sendable {
    /// Entries waiting for a broker reply that may be outstanding at once (device: 1;
    /// `--max-inflight N`). Above 1, PUBREL and PUBCOMP overtake queued publishes
    /// (see `MQTTSession`).
    public var maxInflight: Int
    /// TCP connect timeout (firmware 2.2: 5 s). Expiry is connect failure -5.
    public var tcpConnectTimeout: TimeAmount
    /// CONNECT must be written within this time after TCP connected (else -1).
    public var connectSendTimeout: TimeAmount
    /// CONNACK must arrive within this time after CONNECT was written (else -2).
    public var connAckTimeout: TimeAmount
    /// Incoming PUBLISH packets larger than this many bytes (fixed header included) are
    /// reported as `.oversizedMessage` instead of `.message`. nil: no limit.
    public var maxIncomingPacketSize: Int?
    /// When PINGREQ goes out: the 2.2 or 3.0 firmware's rule (behaviour spec §2.9).
    public var keepaliveRule: MQTTSession.KeepaliveRule = .firmware3_0

    public init(
        maxInflight: Int = 1,
        tcpConnectTimeout: TimeAmount = .seconds(5),
        connectSendTimeout: TimeAmount = .seconds(5),
        connAckTimeout: TimeAmount = .seconds(5),
        maxIncomingPacketSize: Int? = nil
    ) {
        self.maxInflight = maxInflight
        self.tcpConnectTimeout = tcpConnectTimeout
        self.connectSendTimeout = connectSendTimeout
        self.connAckTimeout = connAckTimeout
        self.maxIncomingPacketSize = maxIncomingPacketSize
    }
}

/// A cap on the bytes waiting in outgoing MQTT queues, shared by the clients of one
/// device (the device's queues all live in its one heap).
///
/// The host's stand-in for the ESP8266 heap, where a publish whose queue entry cannot be
/// allocated fails (`m:publish` returns false). `limit` bounds the queues; crossing
/// `highWater` upwards calls `onHighWater` once (again only after the queues fell back
/// below half of it). A device heap model (`--heap`) can take over by setting
/// `externalAdmission`: it is asked first and sees every change through `onChange`.
///
/// Use only on the event loop of its clients. Asked and changed on every publish, and
/// never accessed across a call out: its properties skip the run-time exclusivity check.
public final class MQTTQueueBudget {
    /// Bytes the queues may hold together.
    @exclusivity(unchecked) public var limit: Int
    /// Bytes at which `onHighWater` is called.
    @exclusivity(unchecked) public var highWater: Int
    /// Bytes queued now, over all clients.
    @exclusivity(unchecked) public private(set) var used = 0
    /// Called when `used` first passes `highWater` (the host prints a warning).
    @exclusivity(unchecked) public var onHighWater: ((_ used: Int, _ limit: Int) -> Void)?
    /// Hook for a device heap model: whether `bytes` more may be queued (replaces `limit`).
    @exclusivity(unchecked) public var externalAdmission: ((_ bytes: Int) -> Bool)?
    /// Hook for a device heap model: every change of `used` (positive: allocated).
    @exclusivity(unchecked) public var onChange: ((_ delta: Int) -> Void)?
    @exclusivity(unchecked) private var warned = false

    public init(limit: Int, highWater: Int, onHighWater: ((Int, Int) -> Void)? = nil) {
        self.limit = limit
        self.highWater = highWater
        self.onHighWater = onHighWater
    }

    /// Whether an entry of `bytes` may be queued now.
    public func admits(_ bytes: Int) -> Bool {
        if let externalAdmission { return externalAdmission(bytes) }
        return used + bytes <= limit
    }

    /// The queues grew (positive) or shrank by `delta` bytes.
    public func change(by delta: Int) {
        used += delta
        onChange?(delta)
        if !warned, used >= highWater {
            warned = true
            onHighWater?(used, limit)
        } else if warned, used < highWater / 2 {
            warned = false
        }
    }
}

/// TLS settings for one connection (HostNet's, shared with the `tls` module).
public typealias MQTTTLSOptions = TLSSettings

/// What goes into CONNECT. Empty user name / password are omitted, as on the device; a
/// will with an empty topic is omitted.
public struct MQTTConnectOptions: Sendable, Equatable {
    /// Client identifier. Empty: no CONNECT can be built (device behaviour); nothing is sent
    /// and the attempt fails with -1 after `connectSendTimeout`.
    public var clientID: [UInt8]
    /// Keepalive in seconds; 0 disables PINGREQ (the Lua module maps 0 to 60 itself).
    public var keepAlive: UInt16
    public var username: [UInt8]?
    public var password: [UInt8]?
    public var will: ConnectPacket.Will?
    public var cleanSession: Bool

    public init(
        clientID: [UInt8], keepAlive: UInt16 = 60, username: [UInt8]? = nil, password: [UInt8]? = nil,
        will: ConnectPacket.Will? = nil, cleanSession: Bool = true
    ) {
        self.clientID = clientID
        self.keepAlive = keepAlive
        self.username = username
        self.password = password
        self.will = will
        self.cleanSession = cleanSession
    }

    /// The CONNECT packet these options produce.
    public var connectPacket: ConnectPacket {
        ConnectPacket(
            clientID: clientID, keepAlive: keepAlive, cleanSession: cleanSession,
            will: (will?.topic.isEmpty ?? true) ? nil : will,
            username: (username?.isEmpty ?? true) ? nil : username,
            password: (password?.isEmpty ?? true) ? nil : password)
    }
}

/// Misuse of the client API (the Lua module checks state first and raises its own texts).
public enum MQTTClientError: Error, Sendable, Equatable {
    /// `connect` while TCP is connected.
    case alreadyConnected
    /// publish/subscribe/unsubscribe without a usable connection.
    case notConnected
    /// A QoS 2 publish while so many are unreleased that no identifier is free for it
    /// (see `MQTTSession.acceptsQoS2Publish`).
    case queueFull
}
