import NIOCore

/// The MQTT 3.1.1 client session state machine: no sockets, no clock of its own.
///
/// The owner (normally `MQTTClient`) tells it what happened (TCP connected, a packet
/// arrived, a write completed, time passed) and performs the returned actions in order.
/// One value lives as long as the client: the packet-identifier allocator survives
/// reconnects, everything else is per connection and discarded when it ends.
///
/// Outgoing traffic goes through one FIFO (behaviour spec §2.12): entries leave in order;
/// an entry that waits for a broker reply (QoS 1/2 PUBLISH, PUBREL, SUBSCRIBE, UNSUBSCRIBE,
/// PUBREC for an incoming QoS 2) counts against `maxInflight`, and while the window is full
/// nothing behind it is sent — generated acknowledgements included.
public struct MQTTSession: Sendable {
    /// Tunables of the state machine.
    public struct Configuration: Sendable, Equatable {
        /// How many entries waiting for a broker reply may be outstanding (device: 1).
        public var maxInflight: Int
        /// CONNECT must have been written within this time after TCP connected (else -1).
        public var connectSendTimeout: TimeAmount
        /// CONNACK must arrive within this time after CONNECT was written (else -2).
        public var connAckTimeout: TimeAmount
        /// When PINGREQ goes out (behaviour spec §2.9).
        public var keepaliveRule: KeepaliveRule

        public init(
            maxInflight: Int = 1, connectSendTimeout: TimeAmount = .seconds(5),
            connAckTimeout: TimeAmount = .seconds(5), keepaliveRule: KeepaliveRule = .firmware3_0
        ) {
            self.maxInflight = max(1, maxInflight)
            self.connectSendTimeout = connectSendTimeout
            self.connAckTimeout = connAckTimeout
            self.keepaliveRule = keepaliveRule
        }
    }

    /// The firmware's keepalive timing (behaviour spec §2.9 table).
    public enum KeepaliveRule: Sendable, Equatable {
        /// 3.0: PINGREQ when the keepalive timer (keepalive s, restarted by every completed
        /// send and at CONNACK) expires with an empty queue; with a busy queue the timer
        /// stays stopped until the next send completes.
        case firmware3_0
        /// 2.2: a 1-second tick counts only while the queue is empty and every send resets
        /// it; PINGREQ once it has counted past keepalive, i.e. after keepalive + 1 s of
        /// send-idleness. A busy queue at expiry pauses the count (checked again a second
        /// later) instead of stopping it.
        case firmware2_2
    }

    /// Connection phase.
    public enum State: Sendable, Equatable {
        /// No connection.
        case idle
        /// TCP is up; CONNECT has not been written yet (or cannot be built: empty client id).
        case awaitingConnectWrite
        /// CONNECT written; waiting for CONNACK.
        case awaitingConnAck
        /// CONNACK accepted.
        case connected
        /// The connection is being closed (DISCONNECT sent, or a failure); nothing more is
        /// sent or delivered.
        case closing
    }

    /// What a completed write means; passed back in `written(_:now:)`.
    public enum WriteToken: Sendable, Equatable {
        case connect
        case publishQoS0
        case disconnect
        case other
    }

    /// Something the owner must do.
    public enum Action: Sendable, Equatable {
        /// Write this packet (coalesced; report completion with `written(token, now:)`).
        case send(MQTTPacket, WriteToken)
        /// Deliver this event to the client's owner.
        case deliver(MQTTClientEvent)
        /// Close the TCP connection; when it has closed, deliver `.closed(cause)`.
        case closeConnection(MQTTCloseCause)
    }

    /// One entry of the outgoing FIFO.
    enum Entry: Sendable {
        /// Bookkeeping bytes counted for every entry besides its packet's own bytes.
        static let overhead = 64

        /// Bytes this entry is counted for in `pendingBytes`.
        var cost: Int {
            switch self {
            case .publish(let p): return MQTTSession.queueCost(topicBytes: p.topic.readableBytes, payloadBytes: p.payload.readableBytes)
            case .subscribe(let p): return Self.overhead + p.subscriptions.reduce(0) { $0 + 3 + $1.topicFilter.count }
            case .unsubscribe(let p): return Self.overhead + p.topicFilters.reduce(0) { $0 + 2 + $1.count }
            default: return Self.overhead
            }
        }

        case publish(PublishPacket)
        case subscribe(SubscribePacket)
        case unsubscribe(UnsubscribePacket)
        case pubAck(UInt16)
        case pubRec(UInt16, awaitsRelease: Bool)
        case pubRel(UInt16)
        case pubComp(UInt16)
        case pingReq
        case pingResp
        case disconnect
    }

    public let configuration: Configuration
    public private(set) var state: State = .idle
    /// The long-lived packet identifier allocator.
    public private(set) var packetIDs = MQTTPacketIDAllocator()

    private var keepAlive: TimeAmount = .zero
    private var phaseStarted = NIODeadline.uptimeNanoseconds(0)
    private var lastSendCompleted = NIODeadline.uptimeNanoseconds(0)
    private var keepaliveArmed = false
    /// 2.2: a busy queue at expiry pauses the idle count; look again at this instant.
    private var keepaliveRecheck = NIODeadline.uptimeNanoseconds(0)
    private var pingOutstanding = false
    private var disconnectQueued = false
    private var eventsSuppressed = false

    private var pending = CircularBuffer<Entry>(initialCapacity: 4)  // grows on demand (fleet memory)
    /// Bytes held by `pending` (see `Entry.cost`): what a queue cap or a device heap counts.
    public private(set) var pendingBytes = 0
    /// Outstanding entries by (expected reply type << 16 | packet id).
    private var outstanding = Set<UInt32>()
    /// Our identifiers awaiting the broker's reply (PUBLISH QoS>0 from when it is sent until
    /// PUBACK/PUBCOMP, SUBSCRIBE, UNSUBSCRIBE). Only these must be unique: entries still
    /// queued cannot collide, since two users of one id are 65 535 entries apart in the FIFO
    /// and the window is smaller. Tracking queued ids too would make allocation scan the
    /// whole queue once it is longer than the id space.
    private var idsInUse = Set<UInt16>()
    /// Incoming QoS 2 identifiers awaiting PUBREL, and whether their PUBREC has been sent.
    private var incomingQoS2: [UInt16: Bool] = [:]
    /// PUBACK / PUBREC entries (by `key(.pubAck/.pubRec, id)`) queued when the message
    /// arrived, at the place in the FIFO the firmware puts them, but held there until
    /// `delivered(_:now:)`: the message callback has returned. While held, the entry (and
    /// everything behind it, the queue being strictly serial) does not go out; when the
    /// connection ends first it is discarded with the queue.
    private var heldAcks = Set<UInt32>()
    /// Our QoS 2 publishes queued or sent whose PUBCOMP has not arrived. Each holds its
    /// identifier until then, and its PUBREL waits at the queue tail (device behaviour),
    /// so a burst can hold every identifier at once: see `acceptsQoS2Publish`.
    private var unreleasedQoS2 = 0
    /// Requests sent under another identifier than the one their caller was given (see
    /// `pump`): wire identifier → the caller's. Completions report the caller's.
    private var renumberedIDs: [UInt16: UInt16] = [:]

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    // MARK: - Queries

    /// The earliest time `tick(now:)` has something to do (a timeout or keepalive), if any.
    public var nextDeadline: NIODeadline? {
        switch state {
        case .awaitingConnectWrite: return phaseStarted + configuration.connectSendTimeout
        case .awaitingConnAck: return phaseStarted + configuration.connAckTimeout
        case .connected:
            guard keepaliveArmed, keepAlive > .zero else { return nil }
            switch configuration.keepaliveRule {
            case .firmware3_0: return lastSendCompleted + keepAlive
            case .firmware2_2: return max(lastSendCompleted + keepAlive + .seconds(1), keepaliveRecheck)
            }
        case .idle, .closing: return nil
        }
    }

    /// Whether a PINGREQ has been sent and its PINGRESP has not arrived.
    public var isAwaitingPingResponse: Bool { pingOutstanding }
    /// Whether the connection waits for the broker or for its own output: CONNECT or
    /// CONNACK pending, a reply outstanding (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK,
    /// PINGRESP), entries queued and not yet sent, or closing. Virtual time does not
    /// jump past such a state (`DeviceClock`, rule 3).
    public var awaitsNetwork: Bool {
        switch state {
        case .idle: return false
        case .awaitingConnectWrite, .awaitingConnAck, .closing: return true
        case .connected: return pingOutstanding || !outstanding.isEmpty || !pending.isEmpty
        }
    }

    /// Entries queued and not yet sent.
    public var pendingCount: Int { pending.count }

    /// What queueing a PUBLISH of this size costs against a queue budget (`pendingBytes`):
    /// its packet bytes plus a fixed bookkeeping overhead per entry.
    public static func queueCost(topicBytes: Int, payloadBytes: Int) -> Int {
        Entry.overhead + 2 + topicBytes + 2 + payloadBytes + 5
    }
    /// Entries sent and waiting for a broker reply.
    public var outstandingCount: Int { outstanding.count }
    /// Whether `close(.queued)` has appended a DISCONNECT that has not gone out yet.
    public var isDisconnectQueued: Bool { disconnectQueued }

    /// Whether one more QoS 2 publish can get an identifier no other message in flight
    /// holds. With PUBRELs behind every queued publish, more than ~65 535 unreleased QoS 2
    /// messages would have to share identifiers and the broker would drop the repeats;
    /// the owner refuses the publish instead (on the device the queue fills far earlier).
    public var acceptsQoS2Publish: Bool {
        unreleasedQoS2 < max(1, Int(UInt16.max) - configuration.maxInflight)
    }

    // MARK: - Connection lifecycle

    /// TCP (and TLS) connected: send CONNECT outside the queue. With an empty client id no
    /// CONNECT can be built (as on the device): nothing is sent and -1 follows after the
    /// timeout.
    public mutating func connectionEstablished(_ connect: ConnectPacket, now: NIODeadline) -> [Action] {
        resetConnectionState()
        state = .awaitingConnectWrite
        phaseStarted = now
        keepAlive = .seconds(Int64(connect.keepAlive))
        guard !connect.clientID.isEmpty else { return [] }
        return [.send(.connect(connect), .connect)]
    }

    /// The connection has ended (for any reason): discard the queue and all per-connection
    /// state. The packet identifier allocator is kept.
    public mutating func connectionClosed() {
        resetConnectionState()
        state = .idle
    }

    private mutating func resetConnectionState() {
        pending.removeAll(keepingCapacity: true)
        pendingBytes = 0
        outstanding.removeAll(keepingCapacity: true)
        idsInUse.removeAll(keepingCapacity: true)
        incomingQoS2.removeAll(keepingCapacity: true)
        heldAcks.removeAll(keepingCapacity: true)
        unreleasedQoS2 = 0
        renumberedIDs.removeAll()
        keepaliveArmed = false
        keepaliveRecheck = .uptimeNanoseconds(0)
        pingOutstanding = false
        disconnectQueued = false
        eventsSuppressed = false
    }

    /// What one write to the network carried, as far as its completion matters: the
    /// tokens of its packets, counted rather than listed (their order is fixed: CONNECT
    /// comes first, a DISCONNECT last).
    public struct WriteBatch: Sendable, Equatable {
        public var connect = false
        public var publishesQoS0 = 0
        public var disconnect = false
        public var packets = 0

        public init() {}

        public var isEmpty: Bool { packets == 0 }

        /// Whether the owner must report the write's completion (CONNECT, a QoS 0 publish's
        /// "sent", DISCONNECT); for anything else reporting it at once is the same.
        public var awaitsCompletion: Bool { connect || publishesQoS0 > 0 || disconnect }

        public mutating func append(_ token: WriteToken) {
            packets += 1
            switch token {
            case .connect: connect = true
            case .publishQoS0: publishesQoS0 += 1
            case .disconnect: disconnect = true
            case .other: break
            }
        }
    }

    /// Reports that a packet sent with `token` has been handed to the network.
    public mutating func written(_ token: WriteToken, now: NIODeadline) -> [Action] {
        var batch = WriteBatch()
        batch.append(token)
        return written(batch, now: now)
    }

    /// Reports that the packets of `batch` have been handed to the network.
    public mutating func written(_ batch: WriteBatch, now: NIODeadline) -> [Action] {
        var actions: [Action] = []
        if batch.connect, state == .awaitingConnectWrite {
            state = .awaitingConnAck
            phaseStarted = now
        }
        // Also after a queued DISCONNECT went out behind them; never after close(.immediate).
        if batch.publishesQoS0 > 0, state == .connected || (state == .closing && !eventsSuppressed) {
            actions.reserveCapacity(batch.publishesQoS0)
            for _ in 0..<batch.publishesQoS0 {
                actions.append(.deliver(.published(packetID: nil)))
            }
        }
        if batch.disconnect, state == .closing {
            actions.append(.closeConnection(.localClose))
        }
        // Any completed send other than CONNECT and DISCONNECT restarts the keepalive.
        let others = batch.packets - (batch.connect ? 1 : 0) - (batch.disconnect ? 1 : 0)
        if others > 0, state == .connected {
            lastSendCompleted = now
            keepaliveArmed = true
        }
        return actions
    }

    /// Time passed: check the CONNECT/CONNACK timeouts and keepalive.
    public mutating func tick(now: NIODeadline) -> [Action] {
        guard let deadline = nextDeadline, now >= deadline else { return [] }
        switch state {
        case .awaitingConnectWrite:
            return fail(MQTTConnectFailure.connectSendTimeout, "CONNECT not sent within \(Self.seconds(configuration.connectSendTimeout))")
        case .awaitingConnAck:
            return fail(MQTTConnectFailure.connAckTimeout, "no CONNACK within \(Self.seconds(configuration.connAckTimeout))")
        case .connected:
            if pingOutstanding {
                state = .closing
                return [.closeConnection(.keepaliveTimeout)]
            }
            guard pending.isEmpty, outstanding.isEmpty else {
                switch configuration.keepaliveRule {
                case .firmware3_0:
                    // No ping while the queue is busy; the timer restarts with the next
                    // completed send.
                    keepaliveArmed = false
                case .firmware2_2:
                    // The 1-second tick does not count while the queue is busy.
                    keepaliveRecheck = now + .seconds(1)
                }
                return []
            }
            keepaliveArmed = false
            pingOutstanding = true
            appendEntry(.pingReq)
            var actions: [Action] = []
            pump(into: &actions)
            return actions
        case .idle, .closing:
            return []
        }
    }

    private static func seconds(_ amount: TimeAmount) -> String {
        let ms = amount.nanoseconds / 1_000_000
        return ms % 1000 == 0 ? "\(ms / 1000) s" : "\(ms) ms"
    }

    private mutating func fail(_ code: Int, _ reason: String) -> [Action] {
        state = .closing
        return [
            .closeConnection(.connectFailed(code)),
            .deliver(.connectFailed(MQTTConnectFailure(code: code, reason: reason))),
        ]
    }

    /// The decoder (or the connection) found a protocol violation.
    public mutating func protocolError(_ error: MQTTProtocolError) -> [Action] {
        guard state != .idle, state != .closing else { return [] }
        if state == .awaitingConnectWrite || state == .awaitingConnAck {
            return fail(MQTTConnectFailure.notAConnAck, "invalid first packet: \(error.description)")
        }
        state = .closing
        return [.closeConnection(.protocolError(error.description))]
    }

    // MARK: - Requests from the owner

    /// Consumes a packet identifier without sending anything (the firmware does this for a
    /// publish that is too large).
    public mutating func consumePacketID() -> UInt16 {
        allocateID()
    }

    private mutating func allocateID() -> UInt16 {
        let inUse = idsInUse
        return packetIDs.allocate(isInUse: { inUse.contains($0) })
    }

    /// Queues a PUBLISH. Returns its packet identifier (nil for QoS 0) and the actions.
    /// `qos` is sent as `qos & 3`; QoS 3 gets an identifier and waits for a PUBACK.
    public mutating func publish(
        topic: ByteBuffer, payload: ByteBuffer, qos: UInt8, retain: Bool, now: NIODeadline
    ) -> (packetID: UInt16?, actions: [Action]) {
        let qos = qos & 3
        var id: UInt16?
        if qos > 0 {
            id = allocateID()
        }
        let packet = PublishPacket(topic: topic, payload: payload, qos: qos, retain: retain, packetID: id)
        return (id, enqueue(.publish(packet)))
    }

    /// Queues one SUBSCRIBE carrying all `subscriptions`. Returns its packet identifier.
    public mutating func subscribe(
        _ subscriptions: [SubscribePacket.Subscription], now: NIODeadline
    ) -> (packetID: UInt16, actions: [Action]) {
        let id = allocateID()
        return (id, enqueue(.subscribe(SubscribePacket(packetID: id, subscriptions: subscriptions))))
    }

    /// Queues one UNSUBSCRIBE carrying all `topicFilters`. Returns its packet identifier.
    public mutating func unsubscribe(
        _ topicFilters: [[UInt8]], now: NIODeadline
    ) -> (packetID: UInt16, actions: [Action]) {
        let id = allocateID()
        return (id, enqueue(.unsubscribe(UnsubscribePacket(packetID: id, topicFilters: topicFilters))))
    }

    /// Ends the connection with a DISCONNECT (see `MQTTCloseMode`).
    public mutating func close(_ mode: MQTTCloseMode, now: NIODeadline) -> [Action] {
        switch state {
        case .idle, .closing:
            return []
        case .awaitingConnectWrite, .awaitingConnAck, .connected:
            break
        }
        switch mode {
        case .immediate:
            resetConnectionState()
            eventsSuppressed = true
            state = .closing
            return [.send(.disconnect, .disconnect)]
        case .queued:
            guard !disconnectQueued else { return [] }
            return enqueue(.disconnect)
        }
    }

    private mutating func enqueue(_ entry: Entry) -> [Action] {
        guard state != .idle, state != .closing else { return [] }
        if disconnectQueued {
            // Behind the DISCONNECT: never sent, discarded with the connection.
            return []
        }
        switch entry {
        case .disconnect: disconnectQueued = true
        case .publish(let publish) where publish.qos == 2: unreleasedQoS2 += 1
        default: break
        }
        appendEntry(entry)
        var actions: [Action] = []
        pump(into: &actions)
        return actions
    }

    // MARK: - Incoming

    /// Handles one decoded item from the broker.
    public mutating func received(_ inbound: MQTTInbound, now: NIODeadline) -> [Action] {
        switch state {
        case .idle, .closing:
            return []
        case .awaitingConnectWrite, .awaitingConnAck:
            guard case .packet(.connAck(let connAck)) = inbound else {
                let what: String
                switch inbound {
                case .packet(let packet): what = packet.type.description
                case .oversizedPublish: what = "PUBLISH"
                }
                return fail(MQTTConnectFailure.notAConnAck, "first packet from the broker was \(what), not CONNACK")
            }
            guard connAck.returnCode == 0 else {
                return fail(Int(connAck.returnCode), Self.connAckReason(connAck.returnCode))
            }
            state = .connected
            lastSendCompleted = now
            keepaliveArmed = true
            var actions: [Action] = [.deliver(.connected(sessionPresent: connAck.sessionPresent))]
            pump(into: &actions)
            return actions
        case .connected:
            break
        }
        var actions: [Action] = []
        switch inbound {
        case .oversizedPublish(let publish):
            let message = MQTTMessage(
                topic: publish.topic, payload: publish.partialPayload, qos: publish.qos,
                retain: publish.retain, dup: publish.dup, packetID: publish.packetID)
            receivedPublish(message, event: .oversizedMessage(message, packetSize: publish.packetSize), into: &actions)
        case .packet(let packet):
            switch packet {
            case .publish(let publish):
                let message = MQTTMessage(
                    topic: publish.topic, payload: publish.payload, qos: publish.qos,
                    retain: publish.retain, dup: publish.dup, packetID: publish.packetID)
                receivedPublish(message, event: .message(message), into: &actions)
            case .pubAck(let ack):
                if outstanding.remove(Self.key(.pubAck, ack.packetID)) != nil {
                    idsInUse.remove(ack.packetID)
                    actions.append(.deliver(.published(packetID: callersID(ack.packetID))))
                }
            case .pubRec(let rec):
                if outstanding.remove(Self.key(.pubRec, rec.packetID)) != nil {
                    appendEntry(.pubRel(rec.packetID))
                }
            case .pubComp(let comp):
                if outstanding.remove(Self.key(.pubComp, comp.packetID)) != nil {
                    idsInUse.remove(comp.packetID)
                    unreleasedQoS2 -= 1
                    actions.append(.deliver(.published(packetID: callersID(comp.packetID))))
                }
            case .pubRel(let rel):
                outstanding.remove(Self.key(.pubRel, rel.packetID))
                incomingQoS2.removeValue(forKey: rel.packetID)
                appendEntry(.pubComp(rel.packetID))
            case .subAck(let subAck):
                if outstanding.remove(Self.key(.subAck, subAck.packetID)) != nil {
                    idsInUse.remove(subAck.packetID)
                    actions.append(.deliver(.subscribed(packetID: callersID(subAck.packetID), returnCodes: subAck.returnCodes)))
                }
            case .unsubAck(let unsubAck):
                if outstanding.remove(Self.key(.unsubAck, unsubAck.packetID)) != nil {
                    idsInUse.remove(unsubAck.packetID)
                    actions.append(.deliver(.unsubscribed(packetID: callersID(unsubAck.packetID))))
                }
            case .pingReq:
                appendEntry(.pingResp)
            case .pingResp:
                pingOutstanding = false
            case .connAck, .connect, .subscribe, .unsubscribe, .disconnect:
                return protocolError(MQTTProtocolError("unexpected \(packet.type) from the broker"))
            }
        }
        pump(into: &actions)
        return actions
    }

    private mutating func receivedPublish(_ message: MQTTMessage, event: MQTTClientEvent, into actions: inout [Action]) {
        switch message.qos {
        case 0:
            actions.append(.deliver(event))
        case 1:
            // Queued now, sent once `delivered(_:now:)` says the owner has the message.
            let id = message.packetID!
            heldAcks.insert(Self.key(.pubAck, id))
            appendEntry(.pubAck(id))
            actions.append(.deliver(event))
        default:
            let id = message.packetID!
            if let pubRecSent = incomingQoS2[id] {
                // Already delivered; acknowledge again but do not deliver twice. (Before
                // the first PUBREC is queued there is nothing to repeat.)
                if pubRecSent { appendEntry(.pubRec(id, awaitsRelease: false)) }
            } else {
                incomingQoS2[id] = false
                heldAcks.insert(Self.key(.pubRec, id))
                appendEntry(.pubRec(id, awaitsRelease: true))
                actions.append(.deliver(event))
            }
        }
    }

    /// The owner has handed an incoming QoS 1/2 message (delivered as `.message` or
    /// `.oversizedMessage`) to its consumer: its PUBACK or PUBREC, queued when the message
    /// arrived, may go out now (behaviour spec §2.12: the firmware sends it after the
    /// `message` callback returned). Call it only on the connection that delivered the
    /// message, and not at all if the consumer failed in a way that ends the device (a
    /// PANIC that reboots): the connection is then aborted with the acknowledgement still
    /// held, and the broker sends the message again to a persistent session. Does nothing
    /// for QoS 0 or when the connection is no longer up.
    public mutating func delivered(_ message: MQTTMessage, now: NIODeadline) -> [Action] {
        guard state == .connected, let id = message.packetID, message.qos > 0 else { return [] }
        guard heldAcks.remove(Self.key(message.qos == 1 ? .pubAck : .pubRec, id)) != nil else { return [] }
        var actions: [Action] = []
        pump(into: &actions)
        return actions
    }

    static func connAckReason(_ code: UInt8) -> String {
        switch code {
        case 1: return "connection refused: unacceptable protocol version"
        case 2: return "connection refused: identifier rejected"
        case 3: return "connection refused: server unavailable"
        case 4: return "connection refused: bad user name or password"
        case 5: return "connection refused: not authorized"
        default: return "connection refused: return code \(code)"
        }
    }

    // MARK: - The FIFO

    private static func key(_ reply: MQTTPacketType, _ id: UInt16) -> UInt32 {
        UInt32(reply.rawValue) << 16 | UInt32(id)
    }

    private mutating func appendEntry(_ entry: Entry) {
        pendingBytes += entry.cost
        pending.append(entry)
    }

    /// Sends entries from the head of the queue while the window allows.
    private mutating func pump(into actions: inout [Action]) {
        guard state == .connected else { return }
        while let head = pending.first {
            var awaited: UInt32?
            /// Our own identifier that the reply will release.
            var ownID: UInt16?
            var packet: MQTTPacket
            var token = WriteToken.other
            switch head {
            case .publish(let publish):
                packet = .publish(publish)
                ownID = publish.packetID
                switch publish.qos {
                case 0: token = .publishQoS0
                case 2: awaited = Self.key(.pubRec, publish.packetID!)
                default: awaited = Self.key(.pubAck, publish.packetID!)
                }
            case .subscribe(let subscribe):
                packet = .subscribe(subscribe)
                ownID = subscribe.packetID
                awaited = Self.key(.subAck, subscribe.packetID)
            case .unsubscribe(let unsubscribe):
                packet = .unsubscribe(unsubscribe)
                ownID = unsubscribe.packetID
                awaited = Self.key(.unsubAck, unsubscribe.packetID)
            case .pubAck(let id):
                // Held until the message callback has returned.
                guard !heldAcks.contains(Self.key(.pubAck, id)) else { return }
                packet = .pubAck(PubAckPacket(packetID: id))
            case .pubRec(let id, let awaitsRelease):
                if awaitsRelease, heldAcks.contains(Self.key(.pubRec, id)) { return }
                packet = .pubRec(PubRecPacket(packetID: id))
                // If the PUBREL already came, this PUBREC no longer waits for anything.
                if awaitsRelease, incomingQoS2[id] != nil {
                    awaited = Self.key(.pubRel, id)
                }
            case .pubRel(let id):
                packet = .pubRel(PubRelPacket(packetID: id))
                awaited = Self.key(.pubComp, id)
            case .pubComp(let id):
                packet = .pubComp(PubCompPacket(packetID: id))
            case .pingReq:
                packet = .pingReq
            case .pingResp:
                packet = .pingResp
            case .disconnect:
                guard outstanding.isEmpty else { return }
                pending.removeAll()
                pendingBytes = 0
                state = .closing
                actions.append(.send(.disconnect, .disconnect))
                return
            }
            // Strictly serial: while the window is full nothing goes out, not even
            // entries that wait for no reply (acknowledgements for incoming traffic).
            guard outstanding.count < configuration.maxInflight else { return }
            if let id = ownID, idsInUse.contains(id) {
                // Identifiers come round every 65 535 allocations; this one's earlier user
                // still awaits its reply (a QoS 2 publish whose PUBREL is queued behind
                // this entry). Reusing it in flight would lose a message: take a free one.
                let fresh = allocateID()
                (packet, awaited) = Self.renumbered(head, fresh)
                renumberedIDs[fresh] = id
                ownID = fresh
            }
            if let ownID { idsInUse.insert(ownID) }
            if let awaited {
                outstanding.insert(awaited)
                if case .pubRec(let id, _) = head { incomingQoS2[id] = true }
            }
            pendingBytes -= head.cost
            pending.removeFirst()
            actions.append(.send(packet, token))
        }
    }

    /// The identifier the caller was given for the request now completing under `wireID`.
    private mutating func callersID(_ wireID: UInt16) -> UInt16 {
        renumberedIDs.removeValue(forKey: wireID) ?? wireID
    }

    /// A queued PUBLISH, SUBSCRIBE or UNSUBSCRIBE with another identifier, and the reply
    /// it then awaits.
    private static func renumbered(_ entry: Entry, _ id: UInt16) -> (MQTTPacket, UInt32?) {
        switch entry {
        case .publish(var publish):
            publish.packetID = id
            return (.publish(publish), key(publish.qos == 2 ? .pubRec : .pubAck, id))
        case .subscribe(var subscribe):
            subscribe.packetID = id
            return (.subscribe(subscribe), key(.subAck, id))
        case .unsubscribe(var unsubscribe):
            unsubscribe.packetID = id
            return (.unsubscribe(unsubscribe), key(.unsubAck, id))
        default:
            preconditionFailure("only our own requests carry our identifiers")
        }
    }
}
