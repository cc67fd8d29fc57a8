import HostNet
import MQTT
import NIOCore
import TestSupport
import XCTest

/// Wire-level behaviour of `MQTTClient` against a scripted fake broker.
final class FakeBrokerClientTests: XCTestCase {
    private var broker: FakeBroker!

    override func setUpWithError() throws {
        broker = try FakeBroker.start()
    }

    override func tearDown() {
        broker.shutdown()
    }

    private func options(keepAlive: UInt16 = 60) -> MQTTConnectOptions {
        MQTTConnectOptions(clientID: Array("dev1".utf8), keepAlive: keepAlive)
    }

    /// Connects, answers CONNACK and checks the first events.
    private func connected(
        _ configuration: MQTTClientConfiguration = MQTTClientConfiguration(), keepAlive: UInt16 = 60
    ) throws -> (ClientHarness, FakeBroker.Link) {
        let client = try ClientHarness(configuration: configuration)
        try client.connect(port: broker.port, options: options(keepAlive: keepAlive))
        let link = try broker.accept()
        try link.expect(.connect(options(keepAlive: keepAlive).connectPacket))
        XCTAssertEqual(try client.next(), .tcpConnected)
        try link.send(Packets.connAck(0))
        XCTAssertEqual(try client.next(), .connected(sessionPresent: false))
        XCTAssertEqual(try client.run { $0.remoteAddress?.port }, broker.port)
        return (client, link)
    }

    // MARK: - Connect and close

    func testConnectBytesWithWillUserAndPassword() throws {
        let client = try ClientHarness()
        let options = MQTTConnectOptions(
            clientID: Array("c1".utf8), keepAlive: 30, username: Array("u".utf8), password: Array("pw".utf8),
            will: .init(topic: Array("w/t".utf8), message: Array("gone".utf8), qos: 5, retain: true),
            cleanSession: false)
        try client.connect(port: broker.port, options: options)
        let link = try broker.accept()
        func s(_ t: String) -> [UInt8] { [0, UInt8(t.utf8.count)] + Array(t.utf8) }
        // flags: user 0x80, password 0x40, will retain 0x20, will QoS (5 & 3 = 1) 0x08, will 0x04
        try link.expect(bytes: [0x10, 32] + s("MQTT") + [4, 0xEC, 0, 30] + s("c1") + s("w/t") + s("gone") + s("u") + s("pw"))
        try link.send(Packets.connAck(0, sessionPresent: true))
        XCTAssertEqual(try client.next(), .tcpConnected)
        XCTAssertEqual(try client.next(), .connected(sessionPresent: true))
    }

    func testEmptyUserAndPasswordAreOmitted() throws {
        let client = try ClientHarness()
        try client.connect(port: broker.port, options: MQTTConnectOptions(
            clientID: Array("c".utf8), keepAlive: 60, username: [], password: [], cleanSession: true))
        let link = try broker.accept()
        func s(_ t: String) -> [UInt8] { [0, UInt8(t.utf8.count)] + Array(t.utf8) }
        try link.expect(bytes: [0x10, 13] + s("MQTT") + [4, 0x02, 0, 60] + s("c"))
    }

    func testQueuedCloseSendsDisconnectThenClosedLocal() throws {
        let (client, link) = try connected()
        try client.run { $0.close(.queued) }
        try link.expect(.disconnect)
        try link.expectClosed()
        XCTAssertEqual(try client.next(), .closed(.localClose))
        XCTAssertEqual(try client.run { $0.state }, .idle)
    }

    func testQueuedCloseWaitsForThePubAckAhead() throws {
        let (client, link) = try connected()
        try client.run { client in
            try client.publish(topic: Array("a".utf8), payload: Array("1".utf8), qos: 1, retain: false)
            client.close(.queued)
            XCTAssertEqual(client.state, .connected, "connected until the DISCONNECT is sent")
        }
        try link.expect(Packets.publish("a", "1", qos: 1, id: 1))
        XCTAssertEqual(link.unreadBytes, [], "DISCONNECT waits for the PUBACK")
        try link.send(Packets.pubAck(1))
        try link.expect(.disconnect)
        try link.expectClosed()
        XCTAssertEqual(try client.next(), .published(packetID: 1))
        XCTAssertEqual(try client.next(), .closed(.localClose))
    }

    func testImmediateCloseWritesDisconnectAheadOfTheQueueAndDropsPendingEvents() throws {
        let (client, link) = try connected()
        try client.run { client in
            try client.publish(topic: Array("a".utf8), payload: Array("1".utf8), qos: 1, retain: false)
        }
        try link.expect(Packets.publish("a", "1", qos: 1, id: 1))
        try client.run { client in
            try client.publish(topic: Array("b".utf8), payload: Array("2".utf8), qos: 0, retain: false)
            client.close(.immediate)
            XCTAssertEqual(client.state, .closing)
            XCTAssertThrowsError(try client.publish(topic: [0x61], payload: [], qos: 0, retain: false))
        }
        try link.expect(.disconnect)
        try link.expectClosed()
        XCTAssertEqual(try client.next(), .closed(.localClose))
        XCTAssertEqual(client.unconsumed, [])
    }

    func testAbortClosesWithoutDisconnectAndWithoutEvents() throws {
        let (client, link) = try connected()
        try client.run { $0.abort() }
        try link.expectClosed()
        try client.run { XCTAssertEqual($0.state, .idle) }
        // Reconnect works, packet ids continue.
        try client.connect(port: broker.port, options: options())
        let link2 = try broker.accept()
        try link2.expect(.connect(options().connectPacket))
        XCTAssertEqual(try client.next(), .tcpConnected)
        XCTAssertEqual(client.unconsumed, [])
    }

    func testEventsAreNeverDeliveredInsideTheAPICall() throws {
        let (client, link) = try connected()
        let before = client.allEvents.count
        try client.run { client in
            try client.publish(topic: Array("a".utf8), payload: Array("x".utf8), qos: 0, retain: false)
            client.close(.queued)
        }
        // Inside the run closure nothing could be delivered; afterwards they arrive in order.
        try link.expect(Packets.publish("a", "x"))
        try link.expect(.disconnect)
        XCTAssertEqual(try client.next(), .published(packetID: nil))
        XCTAssertEqual(try client.next(), .closed(.localClose))
        XCTAssertEqual(client.allEvents.count, before + 2)
    }

    // MARK: - Subscribe / unsubscribe

    func testSubscribeQoS012WithIDsFromOneAndUnsubscribe() throws {
        let (client, link) = try connected()
        for qos: UInt8 in 0...2 {
            let id = try client.run { try $0.subscribe([.init(topicFilter: Array("t/\(qos)".utf8), qos: qos)]) }
            XCTAssertEqual(id, UInt16(qos) + 1)
            try link.expect(Packets.subscribe(id, [("t/\(qos)", qos)]))
            try link.send(Packets.subAck(id, [qos]))
            XCTAssertEqual(try client.next(), .subscribed(packetID: id, returnCodes: [qos]))
        }
        let multi = try client.run {
            try $0.subscribe([.init(topicFilter: Array("x".utf8), qos: 1), .init(topicFilter: Array("y".utf8), qos: 2)])
        }
        try link.expect(Packets.subscribe(4, [("x", 1), ("y", 2)]))
        try link.send(Packets.subAck(4, [1, 0x80]))
        XCTAssertEqual(try client.next(), .subscribed(packetID: multi, returnCodes: [1, 0x80]))
        let unsub = try client.run { try $0.unsubscribe([Array("x".utf8), Array("y".utf8)]) }
        try link.expect(Packets.unsubscribe(5, ["x", "y"]))
        try link.send(Packets.unsubAck(unsub))
        XCTAssertEqual(try client.next(), .unsubscribed(packetID: 5))
    }

    // MARK: - Publish flows

    func testPublishQoS0QoS1QoS2Flows() throws {
        let (client, link) = try connected()
        try client.run { try $0.publish(topic: Array("q0".utf8), payload: Array("a".utf8), qos: 0, retain: true) }
        try link.expect(Packets.publish("q0", "a", retain: true))
        XCTAssertEqual(try client.next(), .published(packetID: nil))

        let id1 = try client.run { try $0.publish(topic: Array("q1".utf8), payload: Array("b".utf8), qos: 1, retain: false) }
        try link.expect(Packets.publish("q1", "b", qos: 1, id: id1))
        try link.send(Packets.pubAck(id1!))
        XCTAssertEqual(try client.next(), .published(packetID: id1))

        let id2 = try client.run { try $0.publish(topic: Array("q2".utf8), payload: Array("c".utf8), qos: 2, retain: false) }
        try link.expect(Packets.publish("q2", "c", qos: 2, id: id2))
        try link.send(Packets.pubRec(id2!))
        try link.expect(Packets.pubRel(id2!))
        try link.send(Packets.pubComp(id2!))
        XCTAssertEqual(try client.next(), .published(packetID: id2))
    }

    func testIncomingQoS1AndQoS2WithUnexpectedAcks() throws {
        let (client, link) = try connected()
        try link.send(Packets.publish("in/1", "one", qos: 1, id: 10))
        guard case .message(let m1) = try client.next() else { return XCTFail() }
        XCTAssertEqual(String(buffer: m1.topic), "in/1")
        XCTAssertEqual(String(buffer: m1.payload), "one")
        XCTAssertEqual(m1.qos, 1)
        try link.expect(Packets.pubAck(10))

        try link.send(Packets.publish("in/2", "two", qos: 2, id: 11))
        guard case .message(let m2) = try client.next() else { return XCTFail() }
        XCTAssertEqual(m2.qos, 2)
        try link.expect(Packets.pubRec(11))
        try link.send(Packets.publish("in/2", "two", qos: 2, dup: true, id: 11))
        try link.send(Packets.pubRel(11))
        try link.expect(Packets.pubRec(11))  // the re-send's PUBREC waited behind the first
        try link.expect(Packets.pubComp(11))

        // Unexpected acknowledgements: ignored; unknown PUBREL answered with PUBCOMP.
        try link.send(Packets.pubAck(77))
        try link.send(Packets.pubComp(78))
        try link.send(Packets.pubRec(79))
        try link.send(Packets.pubRel(80))
        try link.expect(Packets.pubComp(80))
        // Still alive: a ping from the broker is answered.
        try link.send(.pingReq)
        try link.expect(.pingResp)
        XCTAssertEqual(client.unconsumed, [], "no second delivery of the QoS 2 message, no other events")
    }

    func testSeveralPacketsInOneSegmentAndASplitPacket() throws {
        let (client, link) = try connected()
        let big = Packets.publish("big", bytes: Array(repeating: 0x42, count: 5000))
        try link.send(bytes: Packets.publish("a", "1").bytes + Packets.publish("b", "2").bytes + Array(big.bytes.prefix(100)))
        try link.send(bytes: Array(big.bytes.dropFirst(100)))
        var topics: [String] = []
        for _ in 0..<3 {
            guard case .message(let m) = try client.next() else { return XCTFail() }
            topics.append(String(buffer: m.topic))
            if topics.last == "big" { XCTAssertEqual(m.payload.readableBytes, 5000) }
        }
        XCTAssertEqual(topics, ["a", "b", "big"])
    }

    func testPacketsArrivingAByteAtATime() throws {
        // The client decodes in its own channel handler: every partial packet must wait
        // for the rest, and the acknowledgement goes out once the packet is complete.
        let (client, link) = try connected()
        let stream = Packets.publish("x/y", "hello", qos: 1, id: 9).bytes + Packets.publish("z", "2").bytes
        for byte in stream { try link.send(bytes: [byte]) }
        guard case .message(let first) = try client.next() else { return XCTFail() }
        XCTAssertEqual(String(buffer: first.topic), "x/y")
        XCTAssertEqual(String(buffer: first.payload), "hello")
        try link.expect(Packets.pubAck(9))
        guard case .message(let second) = try client.next() else { return XCTFail() }
        XCTAssertEqual(String(buffer: second.payload), "2")
    }

    func testOversizedIncomingMessage() throws {
        let (client, link) = try connected(MQTTClientConfiguration(maxIncomingPacketSize: 20))
        try link.send(Packets.publish("t", "0123456789abcdefghijklmnop", qos: 1, id: 3))
        try link.send(Packets.publish("t", "ok"))
        guard case .oversizedMessage(let m, let size) = try client.next() else { return XCTFail() }
        XCTAssertEqual(String(buffer: m.topic), "t")
        XCTAssertEqual(String(buffer: m.payload), "0123456789abc")  // 20 - header 2 - topic 3 - id 2
        XCTAssertEqual(size, 2 + 3 + 2 + 26)
        try link.expect(Packets.pubAck(3))
        guard case .message(let small) = try client.next() else { return XCTFail() }
        XCTAssertEqual(String(buffer: small.payload), "ok")
    }

    // MARK: - Keepalive

    func testPingReqTimingAndOfflineWhenUnanswered() throws {
        let (client, link) = try connected(keepAlive: 1)
        let start = Date()
        try link.expect(.pingReq, timeout: 5)
        let first = Date().timeIntervalSince(start)
        XCTAssertGreaterThan(first, 0.7)
        XCTAssertLessThan(first, 2.5)
        try link.send(.pingResp)
        try link.expect(.pingReq, timeout: 5)
        // No answer this time: the next expiry closes the connection.
        let unanswered = Date()
        XCTAssertEqual(try client.next(timeout: 5), .closed(.keepaliveTimeout))
        XCTAssertGreaterThan(Date().timeIntervalSince(unanswered), 0.7)
        try link.expectClosed()
    }

    // MARK: - Failures

    func testConnAckTimeoutClosesThenReportsMinusTwoThenClosed() throws {
        let client = try ClientHarness(configuration: MQTTClientConfiguration(connAckTimeout: .milliseconds(300)))
        try client.connect(port: broker.port, options: options())
        let link = try broker.accept()
        _ = try link.nextPacket()
        XCTAssertEqual(try client.next(), .tcpConnected)
        guard case .connectFailed(let failure) = try client.next() else { return XCTFail() }
        XCTAssertEqual(failure.code, -2)
        XCTAssertEqual(try client.next(), .closed(.connectFailed(-2)))
        try link.expectClosed()
    }

    func testEmptyClientIDSendsNothingAndFailsWithMinusOne() throws {
        let client = try ClientHarness(configuration: MQTTClientConfiguration(connectSendTimeout: .milliseconds(300)))
        try client.connect(port: broker.port, options: MQTTConnectOptions(clientID: []))
        let link = try broker.accept()
        XCTAssertEqual(try client.next(), .tcpConnected)
        guard case .connectFailed(let failure) = try client.next() else { return XCTFail() }
        XCTAssertEqual(failure.code, -1)
        XCTAssertEqual(try client.next(), .closed(.connectFailed(-1)))
        try link.expectClosed()  // and nothing was sent
    }

    func testFirstPacketNotConnAckIsMinusFourAndRefusalCodes() throws {
        let client = try ClientHarness()
        try client.connect(port: broker.port, options: options())
        var link = try broker.accept()
        _ = try link.nextPacket()
        try link.send(Packets.publish("x", "y"))
        XCTAssertEqual(try client.next(), .tcpConnected)
        guard case .connectFailed(let f4) = try client.next() else { return XCTFail() }
        XCTAssertEqual(f4.code, -4)
        XCTAssertEqual(try client.next(), .closed(.connectFailed(-4)))

        try client.connect(port: broker.port, options: options())
        link = try broker.accept()
        _ = try link.nextPacket()
        try link.send(Packets.connAck(4))
        XCTAssertEqual(try client.next(), .tcpConnected)
        XCTAssertEqual(try client.next(), .connectFailed(MQTTConnectFailure(code: 4, reason: "connection refused: bad user name or password")))
        XCTAssertEqual(try client.next(), .closed(.connectFailed(4)))
    }

    func testTCPRefusedIsMinusFiveWithoutClosed() throws {
        let port = try Mosquitto.freePort()  // nothing listens there
        let client = try ClientHarness()
        try client.connect(port: port, options: options())
        guard case .connectFailed(let failure) = try client.next() else { return XCTFail() }
        XCTAssertEqual(failure.code, -5)
        XCTAssertNotNil(failure.reason)
        try client.run { XCTAssertEqual($0.state, .idle) }
        XCTAssertEqual(client.unconsumed, [])
    }

    func testTLSHandshakeTimeoutIsMinusFive() throws {
        let client = try ClientHarness(configuration: MQTTClientConfiguration(tcpConnectTimeout: .milliseconds(300)))
        try client.connect(port: broker.port, tls: MQTTTLSOptions(verification: .none), options: options())
        let link = try broker.accept()  // plain TCP: never answers the ClientHello
        XCTAssertEqual(
            try client.next(),
            .connectFailed(MQTTConnectFailure(code: -5, reason: "TLS handshake failed: timed out")))
        XCTAssertFalse(link.unreadBytes.isEmpty, "a ClientHello was sent")
        XCTAssertEqual(client.unconsumed, [])
    }

    func testDNSFailureIsMinusThree() throws {
        let client = try ClientHarness()
        try client.connect(host: "no-such-host.invalid", port: 1883, options: options())
        guard case .connectFailed(let failure) = try client.next(timeout: 30) else { return XCTFail() }
        XCTAssertEqual(failure.code, -3, failure.reason ?? "")
    }

    func testRemapRedirectsANameToTheFakeBroker() throws {
        let remap = try AddressRemap(parsing: "broker.example.invalid:1883=127.0.0.1:\(broker.port)")
        let client = try ClientHarness(remap: remap)
        try client.connect(host: "broker.example.invalid", port: 1883, options: options())
        let link = try broker.accept()
        try link.expect(.connect(options().connectPacket))
        XCTAssertEqual(try client.next(), .tcpConnected)
    }

    func testProtocolErrorClosesWithCause() throws {
        let (client, link) = try connected()
        try link.send(bytes: [0x36, 5, 0, 1, 0x61, 0, 1])  // PUBLISH QoS 3
        XCTAssertEqual(try client.next(), .closed(.protocolError("PUBLISH with QoS 3")))
        try link.expectClosed()
    }

    func testLinkDroppedWithFINMidFlow() throws {
        let (client, link) = try connected()
        try client.run { try $0.publish(topic: Array("a".utf8), payload: Array("1".utf8), qos: 1, retain: false) }
        try link.expect(Packets.publish("a", "1", qos: 1, id: 1))
        link.close()
        XCTAssertEqual(try client.next(), .closed(.remoteClosed))
        try client.run { client in
            XCTAssertEqual(client.state, .idle)
            XCTAssertThrowsError(try client.publish(topic: [0x61], payload: [], qos: 0, retain: false))
        }
    }

    func testLinkDroppedWithResetMidFlow() throws {
        let (client, link) = try connected()
        try client.run { try $0.subscribe([.init(topicFilter: Array("a".utf8), qos: 1)]) }
        _ = try link.nextPacket()
        link.reset()
        guard case .closed(.ioError(let text)) = try client.next() else { return XCTFail("expected an I/O error close") }
        XCTAssertFalse(text.isEmpty)
    }

    func testReconnectAfterRemoteCloseDiscardsTheQueueAndKeepsCountingIDs() throws {
        let (client, link) = try connected()
        try client.run { client in
            try client.publish(topic: Array("a".utf8), payload: Array("1".utf8), qos: 1, retain: false)
            try client.publish(topic: Array("a".utf8), payload: Array("2".utf8), qos: 1, retain: false)
        }
        try link.expect(Packets.publish("a", "1", qos: 1, id: 1))
        link.close()
        XCTAssertEqual(try client.next(), .closed(.remoteClosed))
        try client.connect(port: broker.port, options: options())
        let link2 = try broker.accept()
        try link2.expect(.connect(options().connectPacket))
        try link2.send(Packets.connAck(0, sessionPresent: true))
        XCTAssertEqual(try client.next(), .tcpConnected)
        XCTAssertEqual(try client.next(), .connected(sessionPresent: true))
        let id = try client.run { try $0.publish(topic: Array("b".utf8), payload: Array("3".utf8), qos: 1, retain: false) }
        XCTAssertEqual(id, 3)
        // Nothing from the old queue is re-sent (no client-side session state).
        try link2.expect(Packets.publish("b", "3", qos: 1, id: 3))
    }

    func testConnectWhileConnectingAbandonsTheFirstAttempt() throws {
        let client = try ClientHarness()
        let port = broker.port
        try client.run { client in
            try client.connect(host: "127.0.0.1", port: port, options: MQTTConnectOptions(clientID: Array("first".utf8)))
            XCTAssertEqual(client.state, .connecting)
            try client.connect(host: "127.0.0.1", port: port, options: MQTTConnectOptions(clientID: Array("second".utf8)))
        }
        let links = [try broker.accept(), try broker.accept()]
        XCTAssertEqual(try client.next(), .tcpConnected)
        var connects: [MQTTPacket] = []
        for link in links {
            if link.isClosed || (try? link.expectClosed(timeout: 0.5)) != nil {
                XCTAssertEqual(link.unreadBytes, [], "the abandoned attempt sent nothing")
            } else {
                connects.append(try link.nextPacket())
            }
        }
        XCTAssertEqual(connects, [.connect(MQTTConnectOptions(clientID: Array("second".utf8)).connectPacket)])
        XCTAssertEqual(client.unconsumed, [])
    }

    func testManyPublishesInOneTickArriveInOrder() throws {
        let (client, link) = try connected()
        try client.run { client in
            for i in 0..<200 {
                try client.publish(topic: Array("t".utf8), payload: Array(String(i).utf8), qos: 0, retain: false)
            }
        }
        for i in 0..<200 {
            try link.expect(Packets.publish("t", String(i)))
        }
        let acks = try client.waitForCount(200) { $0 == .published(packetID: nil) }
        XCTAssertEqual(acks.count, 200)
    }

    func testTraceLines() throws {
        let (client, link) = try connected()
        try client.run { try $0.publish(topic: Array("t".utf8), payload: Array("hello".utf8), qos: 1, retain: false) }
        try link.expect(Packets.publish("t", "hello", qos: 1, id: 1))
        try link.send(Packets.pubAck(1))
        XCTAssertEqual(try client.next(), .published(packetID: 1))
        XCTAssertEqual(client.trace, [
            "mqtt > CONNECT client=\"dev1\" keepalive=60 clean=1",
            "mqtt < CONNACK session_present=0 rc=0",
            "mqtt > PUBLISH id=1 qos=1 retain=0 dup=0 topic=\"t\" len=5",
            "mqtt < PUBACK id=1",
        ])
    }
}
