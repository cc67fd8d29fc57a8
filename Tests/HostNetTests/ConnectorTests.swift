import Foundation
import HostNet
import NIOCore
import NIOPosix
import NIOSSL
import TestSupport
import XCTest

/// The connector's failure split (DNS / refused / timeout / TLS) and listening-port
/// remapping, on loopback only.
final class ConnectorTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var loop: (any EventLoop)!
    private var network: NIOLoopBound<HostNetwork>!
    private let messages = NIOLockedMessages()

    override func setUpWithError() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        self.loop = loop
        let messages = self.messages
        network = try loop.submit {
            NIOLoopBound(HostNetwork(eventLoop: loop, diagnostics: { messages.append($0) }), eventLoop: loop)
        }.wait()
    }

    override func tearDownWithError() throws {
        network = nil
        try group.syncShutdownGracefully()
    }

    /// Connects on the loop and waits for the outcome.
    private func connect(
        host: String = "127.0.0.1", port: Int, tls: TLSSettings? = nil, timeout: TimeAmount = .seconds(5)
    ) throws -> Result<any Channel, any Error> {
        let network = self.network!
        let future = try loop.submit {
            network.value.connect(host: host, port: port, tls: tls, timeout: timeout) { _ in }
        }.wait()
        do {
            return .success(try future.wait())
        } catch {
            return .failure(error)
        }
    }

    private func connectError(
        host: String = "127.0.0.1", port: Int, tls: TLSSettings? = nil, timeout: TimeAmount = .seconds(5)
    ) throws -> HostConnectError {
        switch try connect(host: host, port: port, tls: tls, timeout: timeout) {
        case .success(let channel):
            channel.close(promise: nil)
            throw XCTSkip("unexpectedly connected")
        case .failure(let error):
            return try XCTUnwrap(error as? HostConnectError, "\(error)")
        }
    }

    /// Listens through HostNet; `childInitializer` runs for every accepted channel.
    private func listen(
        port: Int = 0, childInitializer: @escaping @Sendable (any Channel) throws -> Void = { _ in }
    ) throws -> HostListener {
        let network = self.network!
        let listener = try loop.submit {
            network.value.listen(port: port, childInitializer: childInitializer, accepted: { _ in })
        }.wait().wait()
        return listener
    }

    /// Issue 18, defect 2: an ended connection must not be kept until its connect timeout
    /// expires. (Before HostNet, a handshake timeout was scheduled for every connection,
    /// plain TCP too, and never cancelled: it held the channel and ~4.4 KB for 5 s (2.2)
    /// or 75 s (3.0), so a reconnect loop grew to 106 MB.) With a 60 s timeout, the
    /// channel must be gone a few loop ticks after it closed.
    func testAnEndedConnectionIsReleasedBeforeItsConnectTimeout() throws {
        let listener = try listen()
        defer { listener.channel.close(promise: nil) }
        let box = WeakBox()
        do {
            let channel = try connect(port: listener.port, timeout: .seconds(60)).get()
            box.object = channel as AnyObject
            try channel.close().wait()
        }
        var released = false
        // Each round is one trip through the loop (no sleeping): bounded.
        for _ in 0..<1000 where !released {
            released = try loop.submit { box.object == nil }.wait()
        }
        XCTAssertTrue(released, "the closed channel is still referenced (a timeout task that was never cancelled?)")
    }

    func testDNSFailure() throws {
        let error = try connectError(host: "no-such-host.invalid", port: 1883, timeout: .seconds(30))
        XCTAssertEqual(error.kind, .dnsFailure, error.reason)
        XCTAssertTrue(error.reason.hasPrefix("DNS lookup of no-such-host.invalid failed"), error.reason)
    }

    func testRefusedOnAClosedLoopbackPort() throws {
        let port = try Mosquitto.freePort()  // nothing listens there
        let error = try connectError(port: port)
        XCTAssertEqual(error.kind, .refused, error.reason)
        XCTAssertTrue(error.reason.hasPrefix("TCP connect to 127.0.0.1:\(port) failed: "), error.reason)
    }

    func testTLSHandshakeTimeout() throws {
        // A plain TCP server that never answers the ClientHello.
        let listener = try listen()
        defer { listener.channel.close(promise: nil) }
        let error = try connectError(port: listener.port, tls: TLSSettings(verification: .none), timeout: .milliseconds(300))
        XCTAssertEqual(error, HostConnectError(.timeout, reason: "TLS handshake failed: timed out"))
    }

    func testTLSVerificationFailure() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("hostnet-tls-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let served = try TestCertificates.generate(in: directory.appendingPathComponent("served"))
        let otherCA = try TestCertificates.generate(in: directory.appendingPathComponent("other"), commonName: "other CA")
        var serverConfiguration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(served.serverCertificateFile.path).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: served.serverKeyFile.path, format: .pem)))
        serverConfiguration.certificateVerification = .none
        let serverContext = try NIOSSLContext(configuration: serverConfiguration)
        let listener = try listen { channel in
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverContext))
        }
        defer { listener.channel.close(promise: nil) }

        let wrongCA = TLSSettings(verification: .certificates(pem: try otherCA.caPEM()))
        let error = try connectError(port: listener.port, tls: wrongCA)
        XCTAssertEqual(error, HostConnectError(.tls, reason: "TLS handshake failed: certificate verify failed"))

        // The right CA connects: the failure was the verification, not the server.
        let rightCA = TLSSettings(verification: .certificates(pem: try served.caPEM()))
        let channel = try connect(port: listener.port, tls: rightCA).get()
        channel.close(promise: nil)
    }

    func testPrivilegedListenPortIsRemappedAndReportedOnce() throws {
        let first = try listen(port: 80)
        XCTAssertEqual(first.devicePort, 80)
        XCTAssertNotEqual(first.port, 80)
        XCTAssertEqual(first.localAddress.ipAddress, "127.0.0.1")
        XCTAssertEqual(messages.all, ["listening port 80 is 127.0.0.1:\(first.port)"])
        // Something can connect to it.
        let channel = try connect(port: first.port).get()
        channel.close(promise: nil)
        try first.channel.close().wait()

        let second = try listen(port: 80)
        defer { second.channel.close(promise: nil) }
        XCTAssertEqual(messages.all.count, 1, "reported once per port")
    }

    func testRemapRuleNamesAListenPort() throws {
        let port = try Mosquitto.freePort()
        let remap = try AddressRemap(parsing: "*:5000=127.0.0.1:\(port)")
        let loop = self.loop!
        let listener = try loop.submit {
            HostNetwork(eventLoop: loop, configuration: .init(remap: remap))
                .listen(port: 5000, childInitializer: { _ in }, accepted: { _ in })
        }.wait().wait()
        defer { listener.channel.close(promise: nil) }
        XCTAssertEqual(listener.port, port)
    }

    func testAcceptedChannelsArriveInAcceptOrder() throws {
        let network = self.network!
        let accepted = NIOLockedMessages()
        let listener = try loop.submit {
            network.value.listen(port: 0, childInitializer: { _ in }, accepted: { channel in
                accepted.append("\(channel.remoteAddress?.port ?? 0)")
            })
        }.wait().wait()
        defer { listener.channel.close(promise: nil) }
        var ports: [String] = []
        for _ in 0..<3 {
            let channel = try connect(port: listener.port).get()
            ports.append("\(channel.localAddress?.port ?? -1)")
            // Wait for the accept before the next connect: the order is then defined.
            let deadline = Date().addingTimeInterval(5)
            while accepted.all.count < ports.count, Date() < deadline { usleep(1000) }
            channel.close(promise: nil)
        }
        XCTAssertEqual(accepted.all, ports)
    }

    func testUDPBindOfAPrivilegedPortIsRemapped() throws {
        let network = self.network!
        let channel = try loop.submit { network.value.bindUDP(port: 53) { _ in } }.wait().wait()
        defer { channel.close(promise: nil) }
        XCTAssertNotEqual(channel.localAddress?.port, 53)
        XCTAssertEqual(messages.all, ["listening UDP port 53 is 127.0.0.1:\(channel.localAddress?.port ?? 0)"])
    }
}

/// Strings collected from any thread.
final class NIOLockedMessages: @unchecked Sendable {
    private let lock = NSLock()
    private var messages: [String] = []

    func append(_ message: String) {
        lock.lock()
        messages.append(message)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return messages
    }
}

/// A weak reference, read and written on the event loop only.
private final class WeakBox: @unchecked Sendable {
    weak var object: AnyObject?
}
