import MQTTCore
import NIOCore
import TestSupport
import XCTest

/// The session state machine driven directly, with a manual clock.
final class SessionTests: XCTestCase {
    typealias Action = MQTTSession.Action

    private var now = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private func advance(_ amount: TimeAmount) { now = now + amount }

    private func connectPacket(keepAlive: UInt16 = 10) -> ConnectPacket {
        ConnectPacket(clientID: Array("c".utf8), keepAlive: keepAlive, cleanSession: true)
    }

    /// Writes are reported as completed at once; delivered messages are handed over at
    /// once (as `MQTTClient` does after its event handler returned) unless
    /// `acknowledging` is false.
    private func complete(_ session: inout MQTTSession, _ actions: [Action], acknowledging: Bool = true) -> [Action] {
        var all: [Action] = []
        var queue = actions
        while !queue.isEmpty {
            let action = queue.removeFirst()
            all.append(action)
            switch action {
            case .send(_, let token):
                queue += session.written(token, now: now)
            case .deliver(.message(let m)), .deliver(.oversizedMessage(let m, _)):
                if acknowledging { queue += session.delivered(m, now: now) }
            default:
                break
            }
        }
        return all
    }

    private func sent(_ actions: [Action]) -> [MQTTPacket] {
        actions.compactMap { if case .send(let p, _) = $0 { return p } else { return nil } }
    }

    private func events(_ actions: [Action]) -> [MQTTClientEvent] {
        actions.compactMap { if case .deliver(let e) = $0 { return e } else { return nil } }
    }

    private func connected(
        maxInflight: Int = 1, keepAlive: UInt16 = 10, rule: MQTTSession.KeepaliveRule = .firmware3_0
    ) -> MQTTSession {
        var session = MQTTSession(configuration: .init(maxInflight: maxInflight, keepaliveRule: rule))
        let a = complete(&session, session.connectionEstablished(connectPacket(keepAlive: keepAlive), now: now))
        XCTAssertEqual(sent(a), [.connect(connectPacket(keepAlive: keepAlive))])
        let b = complete(&session, session.received(.packet(Packets.connAck(0)), now: now))
        XCTAssertEqual(events(b), [.connected(sessionPresent: false)])
        XCTAssertEqual(session.state, .connected)
        return session
    }

    private func publish(_ session: inout MQTTSession, qos: UInt8, _ text: String = "m") -> (UInt16?, [Action]) {
        let (id, actions) = session.publish(
            topic: ByteBuffer(string: "t"), payload: ByteBuffer(string: text), qos: qos, retain: false, now: now)
        return (id, complete(&session, actions))
    }

    // MARK: - Connect sequence

    func testConnAckTimeoutIsMinusTwoAndClosesFirst() {
        var session = MQTTSession()
        _ = complete(&session, session.connectionEstablished(connectPacket(), now: now))
        XCTAssertEqual(session.state, .awaitingConnAck)
        advance(.milliseconds(4999))
        XCTAssertEqual(session.tick(now: now), [])
        advance(.milliseconds(1))
        let actions = session.tick(now: now)
        XCTAssertEqual(actions.count, 2)
        XCTAssertEqual(actions.first, .closeConnection(.connectFailed(-2)))
        guard case .deliver(.connectFailed(let failure)) = actions.last else { return XCTFail() }
        XCTAssertEqual(failure.code, -2)
    }

    func testConnectNotWrittenIsMinusOne() {
        var session = MQTTSession()
        let actions = session.connectionEstablished(connectPacket(), now: now)
        XCTAssertEqual(sent(actions).count, 1)  // never reported as written
        XCTAssertEqual(session.nextDeadline, now + .seconds(5))
        advance(.seconds(5))
        XCTAssertEqual(session.tick(now: now).first, .closeConnection(.connectFailed(-1)))
    }

    func testEmptyClientIDSendsNothingAndFailsWithMinusOne() {
        var session = MQTTSession()
        XCTAssertEqual(session.connectionEstablished(ConnectPacket(clientID: [], keepAlive: 60, cleanSession: true), now: now), [])
        advance(.seconds(5))
        XCTAssertEqual(session.tick(now: now).first, .closeConnection(.connectFailed(-1)))
    }

    func testFirstPacketNotConnAckIsMinusFour() {
        var session = MQTTSession()
        _ = complete(&session, session.connectionEstablished(connectPacket(), now: now))
        let actions = session.received(.packet(Packets.publish("a", "b")), now: now)
        XCTAssertEqual(actions.first, .closeConnection(.connectFailed(-4)))
        XCTAssertEqual(events(actions).map { if case .connectFailed(let f) = $0 { return f.code } else { return 0 } }, [-4])
    }

    func testConnAckRefusalCodes() {
        for code: UInt8 in 1...5 {
            var session = MQTTSession()
            _ = complete(&session, session.connectionEstablished(connectPacket(), now: now))
            let actions = session.received(.packet(Packets.connAck(code)), now: now)
            XCTAssertEqual(actions.first, .closeConnection(.connectFailed(Int(code))))
            guard case .deliver(.connectFailed(let f)) = actions.last else { return XCTFail() }
            XCTAssertEqual(f.code, Int(code))
            XCTAssertNotNil(f.reason)
        }
    }

    func testRequestsBeforeConnAckAreQueuedAndSentAfter() {
        var session = MQTTSession()
        _ = complete(&session, session.connectionEstablished(connectPacket(), now: now))
        let (_, a) = publish(&session, qos: 0)
        XCTAssertEqual(sent(a), [])
        let b = complete(&session, session.received(.packet(Packets.connAck(0, sessionPresent: true)), now: now))
        XCTAssertEqual(sent(b), [Packets.publish("t", "m")])
        XCTAssertEqual(events(b), [.connected(sessionPresent: true), .published(packetID: nil)])
    }

    // MARK: - Packet ids

    func testPacketIDsStartAtOneAndSurviveReconnect() {
        var session = connected()
        let (id1, _) = publish(&session, qos: 1)
        XCTAssertEqual(id1, 1)
        let (id0, _) = publish(&session, qos: 0)
        XCTAssertNil(id0)
        XCTAssertEqual(session.subscribe([.init(topicFilter: [0x61], qos: 0)], now: now).packetID, 2)
        XCTAssertEqual(session.unsubscribe([[0x61]], now: now).packetID, 3)
        XCTAssertEqual(session.consumePacketID(), 4)
        session.connectionClosed()
        _ = complete(&session, session.connectionEstablished(connectPacket(), now: now))
        _ = complete(&session, session.received(.packet(Packets.connAck(0)), now: now))
        XCTAssertEqual(publish(&session, qos: 2).0, 5)
    }

    func testPacketIDWrapSkipsZeroAndIDsInUse() {
        var allocator = MQTTPacketIDAllocator(startingAt: 65534)
        XCTAssertEqual(allocator.allocate(), 65534)
        XCTAssertEqual(allocator.allocate(), 65535)
        XCTAssertEqual(allocator.allocate(), 1)
        XCTAssertEqual(allocator.allocate(isInUse: { $0 == 2 || $0 == 3 }), 4)

        var session = connected()
        let (first, _) = publish(&session, qos: 1)  // id 1, stays in use (no PUBACK)
        XCTAssertEqual(first, 1)
        for _ in 0..<65533 { _ = session.consumePacketID() }  // 2...65534
        XCTAssertEqual(session.consumePacketID(), 65535)
        XCTAssertEqual(publish(&session, qos: 1).0, 2, "wraps, skips 0 and the in-use 1")
    }

    func testQueueLongerThanTheIDSpaceKeepsAllocatingInConstantTime() {
        // Only ids awaiting a reply are skipped: a queue deeper than 65 535 entries
        // reuses ids of entries still queued (they can never be outstanding together).
        var session = connected()
        XCTAssertEqual(publish(&session, qos: 1).0, 1)  // sent, awaiting PUBACK
        for expected in 2...65535 { XCTAssertEqual(publish(&session, qos: 1).0, UInt16(expected)) }
        XCTAssertEqual(publish(&session, qos: 1).0, 2, "wraps past 0 and the outstanding 1")
        XCTAssertEqual(publish(&session, qos: 2).0, 3, "3 is queued, not outstanding: reused")
    }

    func testAnIDStillAwaitingAReplyIsNotReusedInFlight() {
        // B is given A's id while A is still queued; when B reaches the head, A awaits its
        // PUBCOMP (its PUBREL is queued behind B), so B goes out with a free id instead.
        var session = connected()
        XCTAssertEqual(publish(&session, qos: 1, "x").0, 1)  // sent, awaiting PUBACK
        XCTAssertEqual(publish(&session, qos: 2, "A").0, 2)  // queued
        for _ in 3...65535 { _ = session.consumePacketID() }
        XCTAssertEqual(publish(&session, qos: 1, "B").0, 2, "wraps past the outstanding 1 to the queued 2")
        let a = complete(&session, session.received(.packet(Packets.pubAck(1)), now: now))
        XCTAssertEqual(sent(a), [Packets.publish("t", "A", qos: 2, id: 2)])
        let b = complete(&session, session.received(.packet(Packets.pubRec(2)), now: now))
        XCTAssertEqual(sent(b), [Packets.publish("t", "B", qos: 1, id: 3)], "2 is still A's until its PUBCOMP")
        let c = complete(&session, session.received(.packet(Packets.pubAck(3)), now: now))
        // Regression: the completion carries the id publish() returned, not the wire's.
        XCTAssertEqual(events(c), [.published(packetID: 2)])
        XCTAssertEqual(sent(c), [Packets.pubRel(2)])
        XCTAssertEqual(events(session.received(.packet(Packets.pubComp(2)), now: now)), [.published(packetID: 2)])
    }

    func testARenumberedSubscribeCompletesWithTheIDSubscribeReturned() {
        // As above, with a SUBSCRIBE in B's place: it goes out as 3, SUBACK 3 reports 2.
        var session = connected()
        XCTAssertEqual(publish(&session, qos: 1, "x").0, 1)  // sent, awaiting PUBACK
        XCTAssertEqual(publish(&session, qos: 2, "A").0, 2)  // queued
        for _ in 3...65535 { _ = session.consumePacketID() }
        let (id, _) = session.subscribe([.init(topicFilter: Array("s".utf8), qos: 0)], now: now)
        XCTAssertEqual(id, 2)
        _ = complete(&session, session.received(.packet(Packets.pubAck(1)), now: now))
        let b = complete(&session, session.received(.packet(Packets.pubRec(2)), now: now))
        guard case .subscribe(let subscribe)? = sent(b).first else { return XCTFail("\(sent(b))") }
        XCTAssertEqual(subscribe.packetID, 3, "2 is still A's until its PUBCOMP")
        let acked = session.received(.packet(.subAck(SubAckPacket(packetID: 3, returnCodes: [0]))), now: now)
        XCTAssertEqual(events(acked), [.subscribed(packetID: 2, returnCodes: [0])])
    }

    func testUnreleasedQoS2PublishesAreLimitedToTheIDSpace() {
        // Every queued QoS 2 publish keeps its id until a PUBCOMP that can only come after
        // its PUBREL, which waits behind all of them: at most 65 534 at window 1.
        var session = connected()
        for _ in 0..<65533 { _ = publish(&session, qos: 2) }
        XCTAssertTrue(session.acceptsQoS2Publish)
        _ = publish(&session, qos: 2)
        XCTAssertFalse(session.acceptsQoS2Publish)
        // The first one completes: room for one more.
        _ = complete(&session, session.received(.packet(Packets.pubRec(1)), now: now))
        XCTAssertEqual(session.pendingCount, 65533 + 1 - 1, "the next publish went out, PUBREL queued")
        XCTAssertFalse(session.acceptsQoS2Publish, "released only by PUBCOMP")
        session.connectionClosed()
        XCTAssertTrue(session.acceptsQoS2Publish, "the queue went with the connection")
    }

    // MARK: - QoS flows and the FIFO

    func testQoS1PublishCompletesOnMatchingPubAckOnly() {
        var session = connected()
        let (id, a) = publish(&session, qos: 1)
        XCTAssertEqual(sent(a), [Packets.publish("t", "m", qos: 1, id: 1)])
        XCTAssertEqual(events(session.received(.packet(Packets.pubAck(99)), now: now)), [])
        XCTAssertEqual(events(session.received(.packet(Packets.pubAck(id!)), now: now)), [.published(packetID: id)])
        XCTAssertEqual(events(session.received(.packet(Packets.pubAck(id!)), now: now)), [], "duplicate ignored")
        XCTAssertEqual(session.state, .connected)
    }

    func testQoSIsMaskedAndQoS3GetsAnIDAndWaits() {
        var session = connected()
        let (id, a) = publish(&session, qos: 7)
        XCTAssertEqual(id, 1)
        XCTAssertEqual(sent(a).map { $0.bytes.first }, [0x36], "QoS 3 on the wire, as the firmware sends it")
        XCTAssertEqual(session.outstandingCount, 1)
        let (id4, _) = publish(&session, qos: 4)
        XCTAssertNil(id4, "4 & 3 = QoS 0")
    }

    func testQoS2OutgoingFlowAppendsPubRelAtTheTail() {
        var session = connected()
        let (id, a) = publish(&session, qos: 2, "one")
        XCTAssertEqual(sent(a), [Packets.publish("t", "one", qos: 2, id: id)])
        let (_, b) = publish(&session, qos: 0, "two")
        XCTAssertEqual(sent(b), [], "blocked behind the QoS 2 publish")
        let c = complete(&session, session.received(.packet(Packets.pubRec(id!)), now: now))
        XCTAssertEqual(sent(c), [Packets.publish("t", "two"), Packets.pubRel(id!)], "PUBREL goes behind what was queued")
        XCTAssertEqual(events(c), [.published(packetID: nil)])
        XCTAssertEqual(events(session.received(.packet(Packets.pubComp(id!)), now: now)), [.published(packetID: id)])
    }

    func testStrictFIFOAcksForIncomingWaitBehindUnacknowledgedEntries() {
        var session = connected()
        let (id, _) = publish(&session, qos: 1)
        let incoming = complete(&session, session.received(.packet(Packets.publish("in", "x", qos: 1, id: 500)), now: now))
        XCTAssertEqual(sent(incoming), [], "PUBACK waits behind the unacknowledged publish")
        guard case .message(let message) = events(incoming).first else { return XCTFail() }
        XCTAssertEqual(String(buffer: message.topic), "in")
        let ping = complete(&session, session.received(.packet(.pingReq), now: now))
        XCTAssertEqual(sent(ping), [])
        let acked = complete(&session, session.received(.packet(Packets.pubAck(id!)), now: now))
        XCTAssertEqual(sent(acked), [Packets.pubAck(500), .pingResp])
    }

    func testWindowGreaterThanOneKeepsOrderAndMatchesAnyOutstanding() {
        var session = connected(maxInflight: 3)
        var ids: [UInt16] = []
        var out: [MQTTPacket] = []
        for i in 0..<5 {
            let (id, a) = publish(&session, qos: 1, "\(i)")
            ids.append(id!)
            out += sent(a)
        }
        XCTAssertEqual(out, (0..<3).map { Packets.publish("t", "\($0)", qos: 1, id: ids[$0]) })
        XCTAssertEqual(session.outstandingCount, 3)
        // Reply for the second one first: frees one slot, the 4th goes out.
        let a = complete(&session, session.received(.packet(Packets.pubAck(ids[1])), now: now))
        XCTAssertEqual(events(a), [.published(packetID: ids[1])])
        XCTAssertEqual(sent(a), [Packets.publish("t", "3", qos: 1, id: ids[3])])
        let b = complete(&session, session.received(.packet(Packets.pubAck(ids[0])), now: now))
        XCTAssertEqual(sent(b), [Packets.publish("t", "4", qos: 1, id: ids[4])])
    }

    func testIncomingQoS2DeliveredOnceAndDupGetsPubRecAgain() {
        var session = connected()
        let first = complete(&session, session.received(.packet(Packets.publish("q2", "x", qos: 2, id: 7)), now: now))
        XCTAssertEqual(events(first).count, 1)
        XCTAssertEqual(sent(first), [Packets.pubRec(7)])
        // The PUBREC waits for PUBREL, so with window 1 the re-PUBREC waits too.
        let dup = complete(&session, session.received(.packet(Packets.publish("q2", "x", qos: 2, dup: true, id: 7)), now: now))
        XCTAssertEqual(events(dup), [], "not delivered again")
        let rel = complete(&session, session.received(.packet(Packets.pubRel(7)), now: now))
        XCTAssertEqual(sent(rel), [Packets.pubRec(7), Packets.pubComp(7)])
        // After PUBREL the id is free: a new message with id 7 is delivered.
        let again = complete(&session, session.received(.packet(Packets.publish("q2", "y", qos: 2, id: 7)), now: now))
        XCTAssertEqual(events(again).count, 1)
    }

    func testPubRelBeforeOurPubRecWentOutDoesNotBlockTheQueue() {
        var session = connected()
        let (id, _) = publish(&session, qos: 1)  // window full
        _ = complete(&session, session.received(.packet(Packets.publish("q2", "x", qos: 2, id: 9)), now: now))
        _ = complete(&session, session.received(.packet(Packets.pubRel(9)), now: now))
        let acked = complete(&session, session.received(.packet(Packets.pubAck(id!)), now: now))
        XCTAssertEqual(sent(acked), [Packets.pubRec(9), Packets.pubComp(9)])
        XCTAssertEqual(session.outstandingCount, 0, "the late PUBREC waits for nothing")
    }

    func testIncomingQoS2DupWithWiderWindowIsAcknowledgedAtOnce() {
        var session = connected(maxInflight: 2)
        _ = complete(&session, session.received(.packet(Packets.publish("q2", "x", qos: 2, id: 7)), now: now))
        let dup = complete(&session, session.received(.packet(Packets.publish("q2", "x", qos: 2, dup: true, id: 7)), now: now))
        XCTAssertEqual(sent(dup), [Packets.pubRec(7)])
        XCTAssertEqual(events(dup), [])
    }

    // MARK: - PUBREL and PUBCOMP with a window above 1

    /// Publishes `count` messages at `qos` with payloads "0", "1", …; returns their ids
    /// and what went out at once.
    private func publishMany(_ session: inout MQTTSession, _ count: Int, qos: UInt8) -> ([UInt16], [MQTTPacket]) {
        var ids: [UInt16] = []
        var out: [MQTTPacket] = []
        for i in 0..<count {
            let (id, actions) = publish(&session, qos: qos, "\(i)")
            ids.append(id!)
            out += sent(actions)
        }
        return (ids, out)
    }

    private func reply(_ session: inout MQTTSession, _ packet: MQTTPacket) -> [Action] {
        complete(&session, session.received(.packet(packet), now: now))
    }

    func testWindowOneKeepsPubRelAndPubCompBehindQueuedPublishes() {
        // The device's single slot: PUBREL and PUBCOMP join the one FIFO's tail, behind
        // every PUBLISH queued before them, whatever their kind.
        var session = connected()
        let incoming = reply(&session, Packets.publish("in", "x", qos: 2, id: 900))
        XCTAssertEqual(sent(incoming), [Packets.pubRec(900)], "awaits PUBREL: the window is full")
        let (ids, first) = publishMany(&session, 3, qos: 2)
        XCTAssertEqual(first, [])
        XCTAssertEqual(sent(reply(&session, Packets.pubRel(900))), [Packets.publish("t", "0", qos: 2, id: ids[0])],
                       "the PUBCOMP queued behind the three publishes")
        XCTAssertEqual(session.pendingCount, 3)
        XCTAssertEqual(sent(reply(&session, Packets.pubRec(ids[0]))), [Packets.publish("t", "1", qos: 2, id: ids[1])])
        XCTAssertEqual(sent(reply(&session, Packets.pubRec(ids[1]))), [Packets.publish("t", "2", qos: 2, id: ids[2])])
        XCTAssertEqual(sent(reply(&session, Packets.pubRec(ids[2]))), [Packets.pubComp(900), Packets.pubRel(ids[0])])
        let a = reply(&session, Packets.pubComp(ids[0]))
        XCTAssertEqual(events(a), [.published(packetID: ids[0])])
        XCTAssertEqual(sent(a), [Packets.pubRel(ids[1])])
        XCTAssertEqual(sent(reply(&session, Packets.pubComp(ids[1]))), [Packets.pubRel(ids[2])])
        XCTAssertEqual(events(reply(&session, Packets.pubComp(ids[2]))), [.published(packetID: ids[2])])
        XCTAssertEqual(session.pendingCount, 0)
        XCTAssertEqual(session.outstandingCount, 0)
    }

    func testWindowAboveOneSendsPubRelAndPubCompAheadOfQueuedPublishes() {
        var session = connected(maxInflight: 3)
        let (ids, first) = publishMany(&session, 6, qos: 2)
        XCTAssertEqual(first, (0..<3).map { Packets.publish("t", "\($0)", qos: 2, id: ids[$0]) })
        // PUBRECs out of order: each PUBREL leaves at once (not publish 3), in the order
        // of the PUBRECs, and holds the slot its PUBLISH had until PUBCOMP.
        XCTAssertEqual(sent(reply(&session, Packets.pubRec(ids[1]))), [Packets.pubRel(ids[1])])
        XCTAssertEqual(sent(reply(&session, Packets.pubRec(ids[0]))), [Packets.pubRel(ids[0])])
        XCTAssertEqual(session.outstandingCount, 3)
        XCTAssertEqual(session.pendingCount, 3)
        let a = reply(&session, Packets.pubComp(ids[1]))
        XCTAssertEqual(events(a), [.published(packetID: ids[1])])
        XCTAssertEqual(sent(a), [Packets.publish("t", "3", qos: 2, id: ids[3])], "publishes keep their order")
        XCTAssertEqual(sent(reply(&session, Packets.pubRec(ids[2]))), [Packets.pubRel(ids[2])])
        // A PUBREL from the broker while the window is full: its PUBCOMP waits for a slot,
        // then leaves ahead of the queued publishes 4 and 5.
        XCTAssertEqual(sent(reply(&session, Packets.pubRel(777))), [], "window full")
        let b = reply(&session, Packets.pubComp(ids[0]))
        XCTAssertEqual(sent(b), [Packets.pubComp(777), Packets.publish("t", "4", qos: 2, id: ids[4])],
                       "a PUBCOMP awaits nothing: the freed slot goes to the next publish")
        XCTAssertEqual(sent(reply(&session, Packets.pubRec(ids[3]))), [Packets.pubRel(ids[3])])
        XCTAssertEqual(sent(reply(&session, Packets.pubComp(ids[2]))), [Packets.publish("t", "5", qos: 2, id: ids[5])])
        XCTAssertEqual(sent(reply(&session, Packets.pubRec(ids[5]))), [Packets.pubRel(ids[5])])
        XCTAssertEqual(sent(reply(&session, Packets.pubRec(ids[4]))), [Packets.pubRel(ids[4])])
        var completed: [MQTTClientEvent] = events(a) + events(b)
        for id in [ids[3], ids[5], ids[4]] { completed += events(reply(&session, Packets.pubComp(id))) }
        XCTAssertEqual(completed, [ids[1], ids[0], ids[3], ids[5], ids[4]].map { .published(packetID: $0) })
        XCTAssertEqual(session.pendingCount, 0)
        XCTAssertEqual(session.outstandingCount, 0)
        XCTAssertEqual(session.pendingBytes, 0)
        XCTAssertTrue(session.acceptsQoS2Publish)
    }

    func testWindowAboveOnePubCompForIncomingQoS2OvertakesQueuedPublishes() {
        var session = connected(maxInflight: 2)
        let incoming = reply(&session, Packets.publish("in", "x", qos: 2, id: 900))
        XCTAssertEqual(sent(incoming), [Packets.pubRec(900)])
        let (ids, first) = publishMany(&session, 3, qos: 1)
        XCTAssertEqual(first, [Packets.publish("t", "0", qos: 1, id: ids[0])])
        XCTAssertEqual(sent(reply(&session, Packets.pubRel(900))),
                       [Packets.pubComp(900), Packets.publish("t", "1", qos: 1, id: ids[1])])
        XCTAssertEqual(sent(reply(&session, Packets.pubAck(ids[0]))), [Packets.publish("t", "2", qos: 1, id: ids[2])])
    }

    func testWindowAboveOneAnIDAwaitingPubCompIsNotReusedInFlight() {
        // As testAnIDStillAwaitingAReplyIsNotReusedInFlight, at window 2: A's PUBREL went
        // out at once, but A keeps its id until PUBCOMP, so B (given A's id while A was
        // queued) goes out under a free one and completes under the one it was given.
        var session = connected(maxInflight: 2)
        XCTAssertEqual(publish(&session, qos: 1, "x").0, 1)
        XCTAssertEqual(publish(&session, qos: 1, "y").0, 2)
        XCTAssertEqual(publish(&session, qos: 2, "A").0, 3)  // queued: window full
        for _ in 4...65535 { _ = session.consumePacketID() }
        XCTAssertEqual(publish(&session, qos: 1, "B").0, 3, "wraps past the outstanding 1 and 2 to the queued 3")
        XCTAssertEqual(sent(reply(&session, Packets.pubAck(1))), [Packets.publish("t", "A", qos: 2, id: 3)])
        XCTAssertEqual(sent(reply(&session, Packets.pubRec(3))), [Packets.pubRel(3)], "ahead of B")
        let b = reply(&session, Packets.pubAck(2))
        XCTAssertEqual(sent(b), [Packets.publish("t", "B", qos: 1, id: 4)], "3 is still A's until its PUBCOMP")
        XCTAssertEqual(events(reply(&session, Packets.pubComp(3))), [.published(packetID: 3)])
        XCTAssertEqual(events(reply(&session, Packets.pubAck(4))), [.published(packetID: 3)], "the id publish() returned")
        XCTAssertEqual(publish(&session, qos: 2, "C").0, 5)
    }

    func testWindowAboveOneQueuedCloseLetsThePubRelOutAndWaitsForPubComp() {
        // With window 1 the PUBREL would join the tail behind the DISCONNECT and never
        // leave; ahead of the queue it completes the message before the DISCONNECT.
        var session = connected(maxInflight: 2)
        let (id, _) = publish(&session, qos: 2)
        XCTAssertEqual(complete(&session, session.close(.queued, now: now)), [])
        XCTAssertEqual(sent(reply(&session, Packets.pubRec(id!))), [Packets.pubRel(id!)])
        XCTAssertEqual(reply(&session, Packets.pubComp(id!)), [
            .deliver(.published(packetID: id)), .send(.disconnect, .disconnect), .closeConnection(.localClose),
        ])
    }

    func testWindowAboveOneReleasesAreCountedAndDiscardedWithTheConnection() {
        var session = connected(maxInflight: 2)
        let (ids, _) = publishMany(&session, 2, qos: 2)
        _ = publish(&session, qos: 1, "queued")
        _ = reply(&session, Packets.pubRec(ids[0]))
        _ = reply(&session, Packets.pubRec(ids[1]))
        XCTAssertEqual(sent(reply(&session, Packets.pubRel(5))), [], "window full: the PUBCOMP waits")
        XCTAssertEqual(session.pendingCount, 2)
        XCTAssertTrue(session.awaitsNetwork)
        session.connectionClosed()
        XCTAssertEqual(session.pendingCount, 0)
        XCTAssertEqual(session.pendingBytes, 0)
    }

    func testUnexpectedRepliesAreIgnoredAndUnknownPubRelGetsPubComp() {
        var session = connected()
        for packet in [Packets.pubAck(3), Packets.pubRec(4), Packets.pubComp(5), Packets.subAck(6, [0]), Packets.unsubAck(7)] {
            let actions = complete(&session, session.received(.packet(packet), now: now))
            XCTAssertEqual(actions, [], "\(packet.type)")
        }
        XCTAssertEqual(sent(complete(&session, session.received(.packet(Packets.pubRel(8)), now: now))), [Packets.pubComp(8)])
        XCTAssertEqual(session.state, .connected)
    }

    func testSubscribeAndUnsubscribeReportReturnCodes() {
        var session = connected()
        let (id, a) = session.subscribe(
            [.init(topicFilter: Array("a".utf8), qos: 0), .init(topicFilter: Array("b".utf8), qos: 2)], now: now)
        XCTAssertEqual(sent(complete(&session, a)), [Packets.subscribe(id, [("a", 0), ("b", 2)])])
        XCTAssertEqual(
            events(session.received(.packet(Packets.subAck(id, [0, 0x80])), now: now)),
            [.subscribed(packetID: id, returnCodes: [0, 0x80])])
        let (uid, b) = session.unsubscribe([Array("a".utf8)], now: now)
        XCTAssertEqual(sent(complete(&session, b)), [Packets.unsubscribe(uid, ["a"])])
        XCTAssertEqual(events(session.received(.packet(Packets.unsubAck(uid)), now: now)), [.unsubscribed(packetID: uid)])
    }

    func testOversizedIncomingQoS1IsReportedAndAcknowledged() {
        var session = connected()
        let over = MQTTOversizedPublish(
            topic: ByteBuffer(string: "t"), partialPayload: ByteBuffer(string: "ab"), qos: 1, retain: false,
            dup: false, packetID: 4, packetSize: 5000)
        let actions = complete(&session, session.received(.oversizedPublish(over), now: now))
        XCTAssertEqual(sent(actions), [Packets.pubAck(4)])
        guard case .oversizedMessage(let message, let size) = events(actions).first else { return XCTFail() }
        XCTAssertEqual(String(buffer: message.payload), "ab")
        XCTAssertEqual(size, 5000)
    }

    func testProtocolErrorAfterConnAckCloses() {
        var session = connected()
        XCTAssertEqual(
            session.received(.packet(.connect(connectPacket())), now: now),
            [.closeConnection(.protocolError("unexpected CONNECT from the broker"))])
        XCTAssertEqual(session.state, .closing)
        XCTAssertEqual(session.received(.packet(Packets.publish("a", "b")), now: now), [], "nothing after closing")
    }

    // MARK: - Keepalive

    func testKeepalivePingAfterIdleAndTimeoutWhenUnanswered() {
        var session = connected(keepAlive: 10)
        XCTAssertEqual(session.nextDeadline, now + .seconds(10))
        advance(.seconds(9))
        XCTAssertEqual(session.tick(now: now), [])
        advance(.seconds(1))
        let ping = complete(&session, session.tick(now: now))
        XCTAssertEqual(sent(ping), [.pingReq])
        // Incoming traffic resets nothing.
        advance(.seconds(5))
        _ = complete(&session, session.received(.packet(Packets.publish("a", "b")), now: now))
        XCTAssertEqual(session.nextDeadline, now + .seconds(5))
        advance(.seconds(5))
        XCTAssertEqual(session.tick(now: now), [.closeConnection(.keepaliveTimeout)])
    }

    func testKeepaliveAnsweredPingKeepsGoingAndSendsRestartTheTimer() {
        var session = connected(keepAlive: 10)
        advance(.seconds(6))
        _ = publish(&session, qos: 0)
        XCTAssertEqual(session.nextDeadline, now + .seconds(10), "a completed send restarts the timer")
        advance(.seconds(10))
        XCTAssertEqual(sent(complete(&session, session.tick(now: now))), [.pingReq])
        _ = session.received(.packet(.pingResp), now: now)
        advance(.seconds(10))
        XCTAssertEqual(sent(complete(&session, session.tick(now: now))), [.pingReq], "answered: ping again, no close")
    }

    func testNoPingWhileTheQueueIsBusyUntilTheNextSend() {
        var session = connected(keepAlive: 10)
        let (id, _) = publish(&session, qos: 1)  // outstanding, no PUBACK yet
        advance(.seconds(10))
        XCTAssertEqual(session.tick(now: now), [])
        XCTAssertNil(session.nextDeadline, "timer stopped until the next completed send")
        _ = complete(&session, session.received(.packet(Packets.pubAck(id!)), now: now))
        XCTAssertNil(session.nextDeadline)
        _ = publish(&session, qos: 0)
        XCTAssertEqual(session.nextDeadline, now + .seconds(10))
    }

    func testKeepalive22PingsAfterKeepalivePlusOneSecond() {
        var session = connected(keepAlive: 10, rule: .firmware2_2)
        XCTAssertEqual(session.nextDeadline, now + .seconds(11))
        advance(.seconds(10))
        XCTAssertEqual(session.tick(now: now), [], "3.0 would ping now; 2.2 waits one more tick")
        advance(.seconds(1))
        XCTAssertEqual(sent(complete(&session, session.tick(now: now))), [.pingReq])
        advance(.seconds(11))
        XCTAssertEqual(session.tick(now: now), [.closeConnection(.keepaliveTimeout)])
    }

    func testKeepalive22BusyQueuePausesTheCountInsteadOfStoppingIt() {
        var session = connected(keepAlive: 10, rule: .firmware2_2)
        let (id, _) = publish(&session, qos: 1)
        advance(.seconds(11))
        XCTAssertEqual(session.tick(now: now), [])
        XCTAssertEqual(session.nextDeadline, now + .seconds(1), "looked at again a second later")
        _ = complete(&session, session.received(.packet(Packets.pubAck(id!)), now: now))
        advance(.seconds(1))
        XCTAssertEqual(sent(complete(&session, session.tick(now: now))), [.pingReq])
    }

    // MARK: - Acknowledgement after delivery (issue 18, defect 1)

    func testIncomingQoS1IsAcknowledgedOnlyOnceDelivered() {
        var session = connected()
        let actions = complete(
            &session, session.received(.packet(Packets.publish("in", "x", qos: 1, id: 5)), now: now), acknowledging: false)
        XCTAssertEqual(sent(actions), [], "no PUBACK before the owner has the message")
        guard case .message(let message) = events(actions).first else { return XCTFail() }
        XCTAssertEqual(sent(complete(&session, session.delivered(message, now: now))), [Packets.pubAck(5)])
    }

    /// The PUBACK keeps the place in the FIFO it got when the message arrived: a publish
    /// and a 3.0 close() made inside the callback go out after it (spec §2.12).
    func testHeldAckKeepsItsPlaceAheadOfWhatTheCallbackQueues() {
        var session = connected()
        let actions = complete(
            &session, session.received(.packet(Packets.publish("in", "x", qos: 1, id: 7)), now: now), acknowledging: false)
        guard case .message(let message) = events(actions).first else { return XCTFail() }
        let (_, during) = session.publish(
            topic: ByteBuffer(string: "out"), payload: ByteBuffer(string: "y"), qos: 0, retain: false, now: now)
        XCTAssertEqual(sent(during), [], "nothing overtakes the held PUBACK")
        XCTAssertEqual(sent(session.close(.queued, now: now)), [])
        let after = complete(&session, session.delivered(message, now: now))
        XCTAssertEqual(sent(after), [Packets.pubAck(7), Packets.publish("out", "y", qos: 0), .disconnect])
    }

    func testIncomingQoS2PubRecWaitsForDeliveryAndNothingAfterTheConnectionEnded() {
        var session = connected()
        let actions = complete(
            &session, session.received(.packet(Packets.publish("in", "x", qos: 2, id: 6)), now: now), acknowledging: false)
        XCTAssertEqual(sent(actions), [])
        guard case .message(let message) = events(actions).first else { return XCTFail() }
        session.connectionClosed()
        XCTAssertEqual(session.delivered(message, now: now), [], "a reboot aborted the connection: no PUBREC")
    }

    func testPendingBytesCountTheQueueAndDropWithIt() {
        var session = connected()
        _ = publish(&session, qos: 1)
        XCTAssertEqual(session.pendingBytes, 0, "the head went out")
        _ = publish(&session, qos: 1, "abc")
        XCTAssertEqual(session.pendingBytes, MQTTSession.queueCost(topicBytes: 1, payloadBytes: 3))
        session.connectionClosed()
        XCTAssertEqual(session.pendingBytes, 0)
    }

    func testBrokerPingReqGetsPingResp() {
        var session = connected()
        XCTAssertEqual(sent(complete(&session, session.received(.packet(.pingReq), now: now))), [.pingResp])
    }

    // MARK: - Close

    func testImmediateCloseSendsDisconnectAheadAndDiscardsTheQueue() {
        var session = connected()
        _ = publish(&session, qos: 1)
        _ = publish(&session, qos: 0, "queued")
        let actions = complete(&session, session.close(.immediate, now: now))
        XCTAssertEqual(actions, [.send(.disconnect, .disconnect), .closeConnection(.localClose)])
        XCTAssertEqual(session.pendingCount, 0)
    }

    func testQueuedCloseWaitsForAcknowledgementsAndDropsLaterRequests() {
        var session = connected()
        let (id, _) = publish(&session, qos: 1)
        XCTAssertEqual(complete(&session, session.close(.queued, now: now)), [])
        XCTAssertTrue(session.isDisconnectQueued)
        XCTAssertEqual(publish(&session, qos: 0, "late").1, [], "queued behind the DISCONNECT")
        let actions = complete(&session, session.received(.packet(Packets.pubAck(id!)), now: now))
        XCTAssertEqual(actions, [
            .deliver(.published(packetID: id)), .send(.disconnect, .disconnect), .closeConnection(.localClose),
        ])
    }

    func testConnectionClosedDiscardsEverythingButTheAllocator() {
        var session = connected()
        _ = publish(&session, qos: 1)
        _ = publish(&session, qos: 1)
        session.connectionClosed()
        XCTAssertEqual(session.state, .idle)
        XCTAssertEqual(session.pendingCount, 0)
        XCTAssertEqual(session.outstandingCount, 0)
        XCTAssertEqual(session.packetIDs.nextCandidate, 3)
    }
}
