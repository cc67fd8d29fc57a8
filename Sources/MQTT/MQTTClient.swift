@_exported import MQTTCore
import Board
import HostNet
import NIOCore

/// A long-lived MQTT 3.1.1 client (one per Lua `mqtt.Client`): connect, close, connect again.
///
/// Not thread-safe: create and use it only on the network's event loop. Events go to
/// `eventHandler` on the loop, in order, never inside the API call that caused them.
///
/// Wire behaviour: see `MQTTSession` (queue, QoS flows, keepalive, timeouts). The client
/// keeps the session and the current connection's channel handler; the handler owns the
/// decoder and the output (a HostNet `CoalescingWriter`: one flush per loop tick, replies
/// to what a read brought when that read completes). Incoming payloads are slices of the
/// receive buffer (not copied before they reach the owner).
///
/// ```swift
/// // on the event loop
/// let network = HostNetwork(eventLoop: loop)
/// let client = MQTTClient(network: network, configuration: .init(maxInflight: 1))
/// client.eventHandler = { event in
///     switch event {
///     case .connected: _ = try? client.subscribe([.init(topicFilter: Array("a/#".utf8), qos: 1)])
///     case .message(let m): print(String(buffer: m.topic), m.payload.readableBytes)
///     case .connectFailed(let failure): print(failure.code, failure.reason ?? "")
///     case .closed(let cause): print("offline", cause)
///     default: break
///     }
/// }
/// try client.connect(host: "127.0.0.1", port: 1883, options: .init(clientID: Array("dev".utf8)))
/// ```
///
/// Drop a client only when it is `.idle` (call `abort()` first otherwise): an open
/// connection keeps the client alive until it closes.
public final class MQTTClient {
    /// Where the client is in its connection life.
    public enum State: Sendable, Equatable {
        /// Never connected, or the last connection is over (after `.closed`/`.connectFailed`
        /// without TCP), or aborted.
        case idle
        /// DNS lookup, TCP connect or TLS handshake pending.
        case connecting
        /// TCP (and TLS) up: the firmware's "connected". CONNACK may still be pending.
        case connected
        /// TCP still up but the connection is ending (DISCONNECT sent, connect failure,
        /// keepalive or protocol error); `.closed` follows.
        case closing
    }

    /// Sockets, clock, flush scheduling: shared by everything on the runtime's loop.
    public let network: HostNetwork
    /// The loop everything happens on.
    public var eventLoop: any EventLoop { network.eventLoop }
    public let configuration: MQTTClientConfiguration
    /// Receives the events (see `MQTTClientEvent`).
    @exclusivity(unchecked) public var eventHandler: ((MQTTClientEvent) -> Void)?
    /// The bytes of this client's queued, unsent entries are counted here (shared by the
    /// clients of one device); a publish that would go past its limit fails with
    /// `MQTTClientError.queueFull`. nil: unbounded.
    @exclusivity(unchecked) public var queueBudget: MQTTQueueBudget?
    /// Asked after `eventHandler` returned from a QoS 1/2 `.message`/`.oversizedMessage`
    /// whether to acknowledge it (PUBACK/PUBREC). Return false when the consumer failed in
    /// a way that ends the device (its connection is about to be aborted): the broker then
    /// redelivers to a persistent session. nil: always acknowledge.
    @exclusivity(unchecked) public var acknowledgesDelivery: (() -> Bool)?
    /// Receives one line whenever the broker breaks MQTT 3.1.1 (a malformed or unexpected
    /// packet, a first packet that is not a CONNACK): the packet and the rule broken. The
    /// connection is closed in any case; this says why (the host prints it on stderr).
    public var protocolViolation: ((String) -> Void)?
    /// `--trace`: one line per packet in (`<`) and out (`>`), e.g.
    /// `mqtt > PUBLISH id=3 qos=1 retain=0 dup=0 topic="a/b" len=5`.
    @exclusivity(unchecked) public var trace: ((String) -> Void)?

    @exclusivity(unchecked) var session: MQTTSession
    /// The pending `connect` call (DNS, TCP or TLS not done yet).
    @exclusivity(unchecked) var attempt: ConnectToken?
    /// The handler of the current connection, once TCP (and TLS) is up.
    @exclusivity(unchecked) var handler: MQTTChannelHandler?
    let events: DeferredEvents<MQTTClientEvent>
    @exclusivity(unchecked) var timer: ClockTask?
    @exclusivity(unchecked) var timerDeadline: NIODeadline?
    @exclusivity(unchecked) var connectOptions = MQTTConnectOptions(clientID: [])
    /// Outstanding on the clock while the session awaits the broker (virtual time).
    let networkOperation: NetworkOperation
    /// Counts connections (and attempts): an acknowledgement belongs to the one that
    /// delivered the message.
    @exclusivity(unchecked) var connectionGeneration = 0
    /// This client's share of `configuration.queueBudget` (its session's pending bytes).
    @exclusivity(unchecked) var budgetShare = 0

    /// Identifies one `connect` call: its late results are ignored once it is abandoned.
    final class ConnectToken {}

    public init(
        network: HostNetwork, configuration: MQTTClientConfiguration = MQTTClientConfiguration(),
        eventHandler: ((MQTTClientEvent) -> Void)? = nil
    ) {
        self.network = network
        self.configuration = configuration
        self.events = DeferredEvents(eventLoop: network.eventLoop, handler: eventHandler)
        self.networkOperation = network.clock.makeNetworkOperation()
        self.session = MQTTSession(configuration: .init(
            maxInflight: configuration.maxInflight,
            connectSendTimeout: configuration.connectSendTimeout,
            connAckTimeout: configuration.connAckTimeout,
            keepaliveRule: configuration.keepaliveRule))
        events.handler = { [weak self] event in self?.dispatch(event) }
    }

    /// The current state.
    public var state: State {
        if handler != nil { return session.state == .closing ? .closing : .connected }
        return attempt != nil ? .connecting : .idle
    }

    /// The peer address of the last connection that came up (for a reconnect to the same
    /// IP and port without a new DNS lookup, as 2.2's autoreconnect does).
    @exclusivity(unchecked) public internal(set) var remoteAddress: SocketAddress?

    /// The identifier the next QoS>0 publish, subscribe or unsubscribe will get (unless it
    /// is still in use).
    public var nextPacketID: UInt16 { session.packetIDs.nextCandidate }

    /// Whether the connection takes more output now: false while the socket is backed up
    /// (the peer does not read); what is published meanwhile waits in our buffer.
    public var isWritable: Bool { handler?.writer.isWritable ?? false }

    /// The current connection's channel (TCP, and TLS, up), if any.
    public var channel: (any Channel)? { handler?.channel }

    /// Output bytes queued in the client and not yet handed to the socket.
    public var bufferedBytes: Int { handler?.writer.bufferedBytes ?? 0 }

    /// Hands `event` to the owner; a QoS 1/2 message is acknowledged only after the
    /// handler returned (behaviour spec §2.12), on the connection that delivered it.
    private func dispatch(_ event: MQTTClientEvent) {
        let generation = connectionGeneration
        eventHandler?(event)
        let message: MQTTMessage
        switch event {
        case .message(let m), .oversizedMessage(let m, _): message = m
        default: return
        }
        guard message.qos > 0, generation == connectionGeneration, handler != nil,
              acknowledgesDelivery?() ?? true else { return }
        perform(session.delivered(message, now: network.clock.now))
    }

    // MARK: - API

    /// Starts a connection to `host:port` (after the network's remapping), with TLS if
    /// `tls` is given. An IP literal starts the TCP connect inside this call; a name is
    /// resolved asynchronously (failure: `.connectFailed(-3)`). A pending DNS/TCP/TLS
    /// attempt is abandoned (it delivers no more events); a closing connection is detached
    /// (its `.closed` is not delivered).
    ///
    /// - Throws: `MQTTClientError.alreadyConnected` in state `.connected`.
    public func connect(host: String, port: Int, tls: MQTTTLSOptions? = nil, options: MQTTConnectOptions) throws {
        eventLoop.preconditionInEventLoop()
        try events.apiScope {
            guard state != .connected else { throw MQTTClientError.alreadyConnected }
            if state != .idle {
                // A closing connection still gets its DISCONNECT onto the wire (spec §0.4).
                detachConnection(flushingPendingOutput: state == .closing)
            }
            session.connectionClosed()
            connectOptions = options
            let token = ConnectToken()
            attempt = token
            let maxPacketSize = configuration.maxIncomingPacketSize
            network.connect(host: host, port: port, tls: tls, timeout: configuration.tcpConnectTimeout) { channel in
                try channel.pipeline.syncOperations.addHandler(
                    MQTTChannelHandler(client: self, network: self.network, maxPacketSize: maxPacketSize))
            }
            .assumeIsolated()
            .whenComplete { result in
                self.connectCompleted(token, result)
            }
        }
    }

    /// Queues a PUBLISH. `qos` goes on the wire as `qos & 3`. Returns the packet identifier
    /// (nil for QoS 0). The completion arrives as `.published` with the same identifier.
    ///
    /// - Throws: `MQTTClientError.notConnected` unless the state is `.connected`;
    ///   `.queueFull` for a QoS 2 publish that no identifier is free for.
    @discardableResult
    public func publish(topic: ByteBuffer, payload: ByteBuffer, qos: UInt8, retain: Bool) throws -> UInt16? {
        eventLoop.preconditionInEventLoop()
        return try events.apiScope {
            guard state == .connected else { throw MQTTClientError.notConnected }
            if qos & 3 == 2, !session.acceptsQoS2Publish { throw MQTTClientError.queueFull }
            let cost = MQTTSession.queueCost(topicBytes: topic.readableBytes, payloadBytes: payload.readableBytes)
            guard queueBudget?.admits(cost) ?? true else { throw MQTTClientError.queueFull }
            let (id, actions) = session.publish(
                topic: topic, payload: payload, qos: qos, retain: retain, now: network.clock.now)
            perform(actions)
            return id
        }
    }

    /// Convenience: publish from byte arrays.
    @discardableResult
    public func publish(topic: [UInt8], payload: [UInt8], qos: UInt8, retain: Bool) throws -> UInt16? {
        try publish(
            topic: ByteBuffer(bytes: topic), payload: ByteBuffer(bytes: payload), qos: qos, retain: retain)
    }

    /// Queues one SUBSCRIBE with all `subscriptions`. Returns its packet identifier; the
    /// SUBACK arrives as `.subscribed`.
    @discardableResult
    public func subscribe(_ subscriptions: [SubscribePacket.Subscription]) throws -> UInt16 {
        try queueRequest { session, now in session.subscribe(subscriptions, now: now) }
    }

    /// Queues one UNSUBSCRIBE with all `topicFilters`. Returns its packet identifier; the
    /// UNSUBACK arrives as `.unsubscribed`.
    @discardableResult
    public func unsubscribe(_ topicFilters: [[UInt8]]) throws -> UInt16 {
        try queueRequest { session, now in session.unsubscribe(topicFilters, now: now) }
    }

    /// A (un)subscribe: queued on a connected client as an API call (its events come later).
    private func queueRequest(
        _ make: (inout MQTTSession, NIODeadline) -> (UInt16, [MQTTSession.Action])
    ) throws -> UInt16 {
        eventLoop.preconditionInEventLoop()
        return try events.apiScope {
            guard state == .connected else { throw MQTTClientError.notConnected }
            let (id, actions) = make(&session, network.clock.now)
            perform(actions)
            return id
        }
    }

    /// Uses up a packet identifier without sending anything (the firmware does this for a
    /// publish that is too large). Works in any state.
    @discardableResult
    public func consumePacketID() -> UInt16 {
        session.consumePacketID()
    }

    /// Ends a connection with DISCONNECT; see `MQTTCloseMode`. Does nothing unless the
    /// state is `.connected` (a pending DNS/TCP attempt is not cancelled — use `abort()`).
    public func close(_ mode: MQTTCloseMode) {
        eventLoop.preconditionInEventLoop()
        events.apiScope {
            guard state == .connected else { return }
            if mode == .immediate {
                events.removeAll()
            }
            perform(session.close(mode, now: network.clock.now))
        }
    }

    /// Closes TCP at once (no DISCONNECT) and drops every pending and future event of the
    /// current connection or attempt (a simulated device reboot). The client can connect
    /// again.
    public func abort() {
        eventLoop.preconditionInEventLoop()
        events.apiScope {
            detachConnection()
            events.removeAll()
        }
    }
}
