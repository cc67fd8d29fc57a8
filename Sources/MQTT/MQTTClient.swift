import NIOCore
import NIOPosix
import NIOSSL

/// A long-lived MQTT 3.1.1 client (one per Lua `mqtt.Client`): connect, close, connect again.
///
/// Not thread-safe: create and use it only on `eventLoop`. Events go to `eventHandler`
/// on the loop, in order, never inside the API call that caused them.
///
/// Wire behaviour: see `MQTTSession` (queue, QoS flows, keepalive, timeouts). Writes are
/// coalesced into one buffer and one flush per loop tick (replies to what a read brought
/// go out when that read completes). Incoming payloads are slices of the receive buffer
/// (not copied before they reach the owner).
///
/// ```swift
/// // on the event loop
/// let client = MQTTClient(eventLoop: loop, configuration: .init(maxInflight: 1))
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

    /// The loop everything happens on.
    public let eventLoop: any EventLoop
    public let configuration: MQTTClientConfiguration
    /// Receives the events (see `MQTTClientEvent`).
    public var eventHandler: ((MQTTClientEvent) -> Void)?
    /// Shared by the clients of one loop: keeps it awake instead of sleeping while a
    /// broker streams messages in (nil: the loop sleeps whenever the sockets are drained).
    public let readBusyPoll: ReadBusyPoll?
    /// Keeps a chain of flushes (a QoS 0 publish loop driven by `puback`) from starving
    /// the loop's sockets. Shared by the clients of one loop when given; else the
    /// client's own.
    public let flushScheduler: FlushScheduler
    /// `--trace`: one line per packet in (`<`) and out (`>`), e.g.
    /// `mqtt > PUBLISH id=3 qos=1 retain=0 dup=0 topic="a/b" len=5`.
    public var trace: ((String) -> Void)?

    var session: MQTTSession
    var connection: Connection?
    var generation = 0
    var events = CircularBuffer<MQTTClientEvent>(initialCapacity: 16)
    var apiDepth = 0
    var draining = false
    var drainScheduled = false
    var timer: Scheduled<Void>?
    var timerDeadline: NIODeadline?
    var connectOptions = MQTTConnectOptions(clientID: [])

    /// Per-connection record (one per `connect` call).
    final class Connection {
        let generation: Int
        var channel: (any Channel)?
        /// The MQTT handler's context: writes start there (a concrete, non-generic call,
        /// unlike `Channel.writeAndFlush` through the existential). Set while the handler
        /// is in the pipeline.
        var context: ChannelHandlerContext?
        var ready = false
        var closed = false
        var closeCause: MQTTCloseCause?
        var lastError: (any Error)?
        var outBuffer: ByteBuffer
        var outBatch = MQTTSession.WriteBatch()
        /// The previous flush's buffer, cleared for reuse.
        var spareBuffer: ByteBuffer?
        var flushScheduled = false
        /// Inside the channel's read: a flush waits for the read to complete.
        var reading = false
        var flushAfterRead = false

        init(generation: Int) {
            self.generation = generation
            self.outBuffer = ByteBufferAllocator().buffer(capacity: 0)
        }
    }

    public init(
        eventLoop: any EventLoop, configuration: MQTTClientConfiguration = MQTTClientConfiguration(),
        readBusyPoll: ReadBusyPoll? = nil, flushScheduler: FlushScheduler? = nil,
        eventHandler: ((MQTTClientEvent) -> Void)? = nil
    ) {
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.readBusyPoll = readBusyPoll
        self.flushScheduler = flushScheduler ?? FlushScheduler(eventLoop: eventLoop)
        self.eventHandler = eventHandler
        self.session = MQTTSession(configuration: .init(
            maxInflight: configuration.maxInflight,
            connectSendTimeout: configuration.connectSendTimeout,
            connAckTimeout: configuration.connAckTimeout))
    }

    /// The current state.
    public var state: State {
        guard let connection else { return .idle }
        guard connection.ready else { return .connecting }
        return session.state == .closing ? .closing : .connected
    }

    /// The peer address of the last connection that came up (for a reconnect to the same
    /// IP and port without a new DNS lookup, as 2.2's autoreconnect does).
    public internal(set) var remoteAddress: SocketAddress?

    /// The identifier the next QoS>0 publish, subscribe or unsubscribe will get (unless it
    /// is still in use).
    public var nextPacketID: UInt16 { session.packetIDs.nextCandidate }

    // MARK: - API

    /// Starts a connection to `host:port` (after `configuration.remap`), with TLS if `tls`
    /// is given. An IP literal starts the TCP connect inside this call; a name is resolved
    /// asynchronously (failure: `.connectFailed(-3)`). A pending DNS/TCP/TLS attempt is
    /// abandoned (it delivers no more events); a closing connection is detached (its
    /// `.closed` is not delivered).
    ///
    /// - Throws: `MQTTClientError.alreadyConnected` in state `.connected`.
    public func connect(host: String, port: Int, tls: MQTTTLSOptions? = nil, options: MQTTConnectOptions) throws {
        eventLoop.preconditionInEventLoop()
        apiDepth += 1
        defer { apiDepth -= 1 }
        guard state != .connected else { throw MQTTClientError.alreadyConnected }
        if state != .idle {
            // A closing connection still gets its DISCONNECT onto the wire (spec §0.4).
            detachConnection(flushingPendingOutput: state == .closing)
        }
        session.connectionClosed()
        connectOptions = options
        generation += 1
        let connection = Connection(generation: generation)
        self.connection = connection

        var (targetHost, targetPort) = configuration.remap.apply(host: host, port: port)
        if targetHost.hasPrefix("["), targetHost.hasSuffix("]") {
            targetHost = String(targetHost.dropFirst().dropLast())
        }
        let ipAddress = try? SocketAddress(ipAddress: targetHost, port: targetPort)

        var sslContext: NIOSSLContext?
        var serverName: String?
        if let tls {
            do {
                sslContext = try Self.makeSSLContext(tls)
            } catch {
                failBeforeTCP(connection, MQTTConnectFailure(
                    code: MQTTConnectFailure.serverNotFound, reason: "TLS setup failed: \(error)"))
                return
            }
            serverName = tls.serverName ?? (ipAddress == nil ? targetHost : nil)
        }

        let handler = MQTTChannelHandler(
            client: self, connection: connection, usesTLS: tls != nil,
            maxPacketSize: configuration.maxIncomingPacketSize)
        let boundHandler = NIOLoopBound(handler, eventLoop: eventLoop)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(configuration.tcpConnectTimeout)
            .channelOption(.allowRemoteHalfClosure, value: false)
            .channelInitializer { [sslContext, serverName] channel in
                do {
                    let sync = channel.pipeline.syncOperations
                    if let sslContext {
                        try sync.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    try sync.addHandler(boundHandler.value)
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let future: EventLoopFuture<any Channel>
        if let ipAddress {
            future = bootstrap.connect(to: ipAddress)
        } else {
            future = bootstrap.connect(host: targetHost, port: targetPort)
        }
        let displayHost = targetHost
        future.assumeIsolated().whenComplete { result in
            self.connectCompleted(connection, result, host: displayHost, port: targetPort)
        }
    }

    /// Queues a PUBLISH. `qos` goes on the wire as `qos & 3`. Returns the packet identifier
    /// (nil for QoS 0). The completion arrives as `.published`.
    ///
    /// - Throws: `MQTTClientError.notConnected` unless the state is `.connected`;
    ///   `.queueFull` for a QoS 2 publish that no identifier is free for.
    @discardableResult
    public func publish(topic: ByteBuffer, payload: ByteBuffer, qos: UInt8, retain: Bool) throws -> UInt16? {
        eventLoop.preconditionInEventLoop()
        apiDepth += 1
        defer { apiDepth -= 1 }
        guard state == .connected else { throw MQTTClientError.notConnected }
        if qos & 3 == 2, !session.acceptsQoS2Publish { throw MQTTClientError.queueFull }
        let (id, actions) = session.publish(topic: topic, payload: payload, qos: qos, retain: retain, now: .now())
        perform(actions)
        return id
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
        eventLoop.preconditionInEventLoop()
        apiDepth += 1
        defer { apiDepth -= 1 }
        guard state == .connected else { throw MQTTClientError.notConnected }
        let (id, actions) = session.subscribe(subscriptions, now: .now())
        perform(actions)
        return id
    }

    /// Queues one UNSUBSCRIBE with all `topicFilters`. Returns its packet identifier; the
    /// UNSUBACK arrives as `.unsubscribed`.
    @discardableResult
    public func unsubscribe(_ topicFilters: [[UInt8]]) throws -> UInt16 {
        eventLoop.preconditionInEventLoop()
        apiDepth += 1
        defer { apiDepth -= 1 }
        guard state == .connected else { throw MQTTClientError.notConnected }
        let (id, actions) = session.unsubscribe(topicFilters, now: .now())
        perform(actions)
        return id
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
        apiDepth += 1
        defer { apiDepth -= 1 }
        guard state == .connected else { return }
        if mode == .immediate {
            events.removeAll()
        }
        perform(session.close(mode, now: .now()))
    }

    /// Closes TCP at once (no DISCONNECT) and drops every pending and future event of the
    /// current connection or attempt (a simulated device reboot). The client can connect
    /// again.
    public func abort() {
        eventLoop.preconditionInEventLoop()
        apiDepth += 1
        defer { apiDepth -= 1 }
        detachConnection()
        events.removeAll()
    }
}
