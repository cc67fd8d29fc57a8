import HostNet
import MQTT
import NIOCore
import TestSupport
import XCTest

/// `MQTTClient` against a real mosquitto started by the test.
final class MosquittoClientTests: XCTestCase {
    private func options(_ id: String, user: String? = nil, password: String? = nil) -> MQTTConnectOptions {
        MQTTConnectOptions(
            clientID: Array(id.utf8), keepAlive: 60, username: user.map { Array($0.utf8) },
            password: password.map { Array($0.utf8) })
    }

    private func connect(
        _ broker: Mosquitto, _ id: String, configuration: MQTTClientConfiguration = MQTTClientConfiguration(),
        user: String? = nil, password: String? = nil
    ) throws -> ClientHarness {
        let client = try ClientHarness(configuration: configuration)
        try client.connect(port: broker.port, options: options(id, user: user, password: password))
        XCTAssertEqual(try client.next(), .tcpConnected)
        XCTAssertEqual(try client.next(), .connected(sessionPresent: false), broker.log())
        return client
    }

    private func subscribe(_ client: ClientHarness, _ topic: String, qos: UInt8) throws {
        let id = try client.run { try $0.subscribe([.init(topicFilter: Array(topic.utf8), qos: qos)]) }
        XCTAssertEqual(try client.next(), .subscribed(packetID: id, returnCodes: [qos]))
    }

    func testPlainPublishSubscribeRoundTripAndQueuedClose() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let client = try connect(broker, "plain")
        try subscribe(client, "plain/#", qos: 1)
        let id = try client.run { try $0.publish(topic: Array("plain/a".utf8), payload: Array("hello".utf8), qos: 1, retain: false) }
        var gotMessage = false
        var gotAck = false
        for _ in 0..<2 {
            switch try client.next() {
            case .message(let m):
                XCTAssertEqual(String(buffer: m.topic), "plain/a")
                XCTAssertEqual(String(buffer: m.payload), "hello")
                gotMessage = true
            case .published(let pid):
                XCTAssertEqual(pid, id)
                gotAck = true
            case let other:
                XCTFail("unexpected \(other)")
            }
        }
        XCTAssertTrue(gotMessage && gotAck)
        try client.run { $0.close(.queued) }
        XCTAssertEqual(try client.next(), .closed(.localClose))
    }

    func testImmediateCloseDoesNotFireTheWill() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let watcher = try connect(broker, "watcher")
        try subscribe(watcher, "will/#", qos: 0)
        let client = try ClientHarness()
        var opts = options("dying")
        opts.will = .init(topic: Array("will/dying".utf8), message: Array("gone".utf8))
        try client.connect(port: broker.port, options: opts)
        XCTAssertEqual(try client.next(), .tcpConnected)
        XCTAssertEqual(try client.next(), .connected(sessionPresent: false))
        try client.run { $0.close(.immediate) }
        XCTAssertEqual(try client.next(), .closed(.localClose))
        // Abort a second client with a will: that will is published; the first one was not.
        let aborted = try ClientHarness()
        opts.clientID = Array("aborted".utf8)
        opts.will = .init(topic: Array("will/aborted".utf8), message: Array("gone".utf8))
        try aborted.connect(port: broker.port, options: opts)
        XCTAssertEqual(try aborted.next(), .tcpConnected)
        XCTAssertEqual(try aborted.next(), .connected(sessionPresent: false))
        try aborted.run { $0.abort() }
        guard case .message(let m) = try watcher.next() else { return XCTFail() }
        XCTAssertEqual(String(buffer: m.topic), "will/aborted", "the DISCONNECT of close(.immediate) reached the broker")
    }

    /// mosquitto 2.0 answers a wrong password with 5 (not authorized), like a missing one;
    /// return code 4 is covered by the fake-broker tests.
    func testWrongPasswordAndAnonymousAreRefusedWithFive() throws {
        let broker = try Mosquitto.start(.init(users: ["alice": "secret"], allowAnonymous: false))
        defer { broker.stop() }
        for (id, user, password) in [("bad", "alice", "wrong"), ("anon", nil, nil)] as [(String, String?, String?)] {
            let client = try ClientHarness()
            try client.connect(port: broker.port, options: options(id, user: user, password: password))
            XCTAssertEqual(try client.next(), .tcpConnected)
            guard case .connectFailed(let failure) = try client.next() else { return XCTFail() }
            XCTAssertEqual(failure.code, 5, id)
            XCTAssertEqual(failure.reason, "connection refused: not authorized")
            XCTAssertEqual(try client.next(), .closed(.connectFailed(5)))
        }
        _ = try connect(broker, "good", user: "alice", password: "secret")
    }

    /// A password without a user name (the firmware can send that) is a protocol violation
    /// for mosquitto: it closes TCP without a CONNACK, which the client reports as a remote
    /// close (no connectFailed).
    func testPasswordWithoutUserNameIsDroppedByMosquitto() throws {
        let broker = try Mosquitto.start(.init(users: ["alice": "secret"], allowAnonymous: false))
        defer { broker.stop() }
        let client = try ClientHarness()
        try client.connect(port: broker.port, options: options("nouser", password: "secret"))
        XCTAssertEqual(try client.next(), .tcpConnected)
        XCTAssertEqual(try client.next(), .closed(.remoteClosed))
    }

    /// mosquitto 2.0 grants a subscription the ACL denies (SUBACK with the QoS) but never
    /// delivers matching messages. (It also drops a 3.1.1 client right after acknowledging
    /// a publish to a denied topic, so the publishing is done by another user here.)
    func testACLFiltersDeniedTopics() throws {
        let broker = try Mosquitto.start(.init(
            users: ["alice": "secret", "bob": "pw"], allowAnonymous: false,
            acl: "user alice\ntopic readwrite allowed/#\nuser bob\ntopic readwrite #\n"))
        defer { broker.stop() }
        let client = try connect(broker, "acl", user: "alice", password: "secret")
        let id = try client.run {
            try $0.subscribe([.init(topicFilter: Array("allowed/#".utf8), qos: 1), .init(topicFilter: Array("denied/#".utf8), qos: 1)])
        }
        guard case .subscribed(let sid, let codes) = try client.next() else { return XCTFail() }
        XCTAssertEqual(sid, id)
        XCTAssertEqual(codes.count, 2)
        try broker.mosquittoPub(["-u", "bob", "-P", "pw", "-t", "denied/x", "-m", "no", "-q", "1"])
        try broker.mosquittoPub(["-u", "bob", "-P", "pw", "-t", "allowed/x", "-m", "yes", "-q", "1"])
        let message = try client.waitFor { if case .message = $0 { return true } else { return false } }
        guard case .message(let m) = message else { return XCTFail() }
        XCTAssertEqual(String(buffer: m.topic), "allowed/x", "the denied message never arrives")
    }

    func testTLSWithTheRightCAAndWithAWrongCA() throws {
        let broker = try Mosquitto.start(.init(tls: true))
        defer { broker.stop() }
        let tlsPort = try XCTUnwrap(broker.tlsPort)
        let ca = try XCTUnwrap(broker.certificates).caPEM()

        let good = try ClientHarness()
        try good.connect(port: tlsPort, tls: MQTTTLSOptions(verification: .certificates(pem: ca)), options: options("tls"))
        XCTAssertEqual(try good.next(), .tcpConnected)
        XCTAssertEqual(try good.next(), .connected(sessionPresent: false))
        try subscribe(good, "tls/t", qos: 0)
        try good.run { try $0.publish(topic: Array("tls/t".utf8), payload: Array("secret".utf8), qos: 0, retain: false) }
        _ = try good.waitFor { if case .message(let m) = $0 { return String(buffer: m.payload) == "secret" } else { return false } }

        let other = try TestCertificates.generate(
            in: broker.directory.appendingPathComponent("other-ca"), commonName: "some other CA")
        let bad = try ClientHarness()
        try bad.connect(port: tlsPort, tls: MQTTTLSOptions(verification: .certificates(pem: try other.caPEM())), options: options("tls2"))
        guard case .connectFailed(let failure) = try bad.next() else { return XCTFail() }
        XCTAssertEqual(failure.code, -5)
        XCTAssertEqual(failure.reason, "TLS handshake failed: certificate verify failed")
        XCTAssertEqual(bad.unconsumed, [], "no closed event: TLS never came up")

        let unverified = try ClientHarness()
        try unverified.connect(port: tlsPort, tls: MQTTTLSOptions(verification: .none), options: options("tls3"))
        XCTAssertEqual(try unverified.next(), .tcpConnected)
        XCTAssertEqual(try unverified.next(), .connected(sessionPresent: false))
    }

    func testRetainedMessage() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        try broker.mosquittoPub(["-t", "ret/t", "-m", "kept", "-r", "-q", "1"])
        let client = try connect(broker, "ret")
        let id = try client.run { try $0.subscribe([.init(topicFilter: Array("ret/#".utf8), qos: 1)]) }
        var message: MQTTMessage?
        for _ in 0..<2 {
            switch try client.next() {
            case .message(let m): message = m
            case .subscribed(let pid, let codes): XCTAssertEqual(pid, id); XCTAssertEqual(codes, [1])
            case let other: XCTFail("unexpected \(other)")
            }
        }
        XCTAssertEqual(message.map { String(buffer: $0.payload) }, "kept")
        XCTAssertEqual(message?.retain, true)
    }

    func testQoS2RoundTripDeliveredOnce() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let client = try connect(broker, "q2")
        try subscribe(client, "q2/t", qos: 2)
        let id = try client.run { try $0.publish(topic: Array("q2/t".utf8), payload: Array("exactly once".utf8), qos: 2, retain: false) }
        _ = try client.waitFor("published") { $0 == .published(packetID: id) }
        // A later QoS 0 message marks the end; the QoS 2 message must have come exactly once.
        try client.run { try $0.publish(topic: Array("q2/t".utf8), payload: Array("end".utf8), qos: 0, retain: false) }
        _ = try client.waitForCount(1) { if case .message(let m) = $0 { return String(buffer: m.payload) == "end" } else { return false } }
        let messages = client.allEvents.compactMap { event -> MQTTMessage? in
            if case .message(let m) = event { return m } else { return nil }
        }
        XCTAssertEqual(messages.map { String(buffer: $0.payload) }, ["exactly once", "end"])
        XCTAssertEqual(messages.first?.qos, 2)
    }

    func testOneMegabytePayload() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let client = try connect(broker, "big")
        try subscribe(client, "big/t", qos: 1)
        let payload = (0..<1_048_576).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try client.run { try $0.publish(topic: Array("big/t".utf8), payload: payload, qos: 1, retain: false) }
        let event = try client.waitFor(timeout: 20) { if case .message = $0 { return true } else { return false } }
        guard case .message(let m) = event else { return XCTFail() }
        XCTAssertEqual(m.payload.readableBytes, payload.count)
        XCTAssertTrue(m.payload.readableBytesView.elementsEqual(payload))
    }

    private func bulk(count: Int, window: Int) throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let configuration = MQTTClientConfiguration(maxInflight: window)
        let receiver = try connect(broker, "receiver", configuration: configuration)
        try subscribe(receiver, "bulk/t", qos: 1)
        let sender = try connect(broker, "sender", configuration: configuration)
        try sender.run { client in
            for i in 0..<count {
                try client.publish(topic: Array("bulk/t".utf8), payload: Array(String(i).utf8), qos: 1, retain: false)
            }
        }
        let acks = try sender.waitForCount(count, timeout: 60) { if case .published = $0 { return true } else { return false } }
        XCTAssertEqual(acks.count, count)
        let messages = try receiver.waitForCount(count, timeout: 60) { if case .message = $0 { return true } else { return false } }
        let payloads = messages.map { event -> Int in
            guard case .message(let m) = event else { return -1 }
            return Int(String(buffer: m.payload)) ?? -1
        }
        XCTAssertEqual(payloads, Array(0..<count), "all messages, in order, none lost")
    }

    func testTenThousandQoS1MessagesInOrderWithWindow20() throws {
        try bulk(count: 10_000, window: 20)
    }

    func testThousandQoS1MessagesInOrderWithWindow1() throws {
        try bulk(count: 1_000, window: 1)
    }
}
