import Foundation
import HostNet
import NIOCore
import NIOPosix
import TestSupport
import XCTest

/// `--pcap` for UDP: datagrams through HostNet's datagram channels (`bindUDP`,
/// `connectUDP`) with capture on, exchanged with a NIO echo peer on loopback; then
/// `tcpdump -r` must show each as a UDP packet with the real ports, the payload and
/// correct checksums (`-vv` verifies the IPv4 header and UDP checksums).
final class UDPCaptureTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var loop: (any EventLoop)!
    private var directory: URL!
    private var capture: PacketCapture!
    private var network: NIOLoopBound<HostNetwork>!

    override func setUpWithError() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        self.loop = loop
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("udp-pcap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let capture = try PacketCapture(path: directory.appendingPathComponent("out.pcap").path)
        self.capture = capture
        network = try loop.submit {
            NIOLoopBound(HostNetwork(eventLoop: loop, capture: capture), eventLoop: loop)
        }.wait()
    }

    override func tearDownWithError() throws {
        network = nil
        capture?.close()
        try group.syncShutdownGracefully()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A UDP echo peer on `host`: answers each datagram with "echo:" + its payload.
    private func startEchoPeer(host: String) throws -> any Channel {
        try DatagramBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
            }
            .bind(host: host, port: 0).wait()
    }

    /// Waits for the capture to be written, then returns `tcpdump -n -vv -X -r`'s output.
    private func dump() throws -> String {
        capture.close()
        let result = try Mosquitto.runTool(
            "tcpdump", ["-n", "-vv", "-X", "-r", directory.appendingPathComponent("out.pcap").path])
        XCTAssertEqual(result.status, 0, result.stderr)
        return result.stdout
    }

    /// Whether `-X` output shows `payload` in some packet's bytes (its hex columns, joined
    /// across lines, as the ASCII column splits text at 16-byte boundaries).
    private func showsBytes(_ output: String, _ payload: String) -> Bool {
        let hex = output.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("0x"), let colon = trimmed.firstIndex(of: ":") else { return nil }
            // "0x0010:  7f00 0001 ...  ascii": the hex groups end at the double space.
            let columns = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            let groups = columns.components(separatedBy: "  ").first ?? ""
            return groups.replacingOccurrences(of: " ", with: "")
        }.joined()
        return hex.contains(payload.utf8.map { String(format: "%02x", $0) }.joined())
    }

    func testBoundSocketDatagramsBothWaysAreCaptured() throws {
        let peer = try startEchoPeer(host: "127.0.0.1")
        defer { peer.close(promise: nil) }
        let peerAddress = try XCTUnwrap(peer.localAddress)
        let received = Received()
        let network = self.network!
        let channel = try loop.submit {
            network.value.bindUDP(port: 0) { channel in
                try channel.pipeline.syncOperations.addHandler(Collector(received: received))
            }
        }.wait().wait()
        defer { channel.close(promise: nil) }
        let localPort = try XCTUnwrap(channel.localAddress?.port)
        let buffer = channel.allocator.buffer(string: "udp-capture-ping")
        try channel.writeAndFlush(AddressedEnvelope(remoteAddress: peerAddress, data: buffer)).wait()
        XCTAssertEqual(received.waitFor(count: 1), ["echo:udp-capture-ping"])
        try channel.close().wait()

        let output = try dump()
        let peerPort = try XCTUnwrap(peerAddress.port)
        XCTAssertTrue(output.contains("127.0.0.1.\(localPort) > 127.0.0.1.\(peerPort): [udp sum ok] UDP, length 16"), output)
        XCTAssertTrue(output.contains("127.0.0.1.\(peerPort) > 127.0.0.1.\(localPort): [udp sum ok] UDP, length 21"), output)
        XCTAssertTrue(output.contains("proto UDP (17)"), output)
        XCTAssertFalse(output.contains("bad cksum"), "IPv4 header checksums: \(output)")
        XCTAssertTrue(showsBytes(output, "udp-capture-ping"), output)
        XCTAssertTrue(showsBytes(output, "echo:udp-capture-ping"), output)
        XCTAssertFalse(showsBytes(output, "not-sent"), output)
    }

    func testSocketBoundToAllInterfacesIsRecordedAsLoopback() throws {
        // --expose binds 0.0.0.0: the record's local address is the peer family's loopback.
        let peer = try startEchoPeer(host: "127.0.0.1")
        defer { peer.close(promise: nil) }
        let peerAddress = try XCTUnwrap(peer.localAddress)
        let (loop, capture) = (self.loop!, self.capture!)
        let exposed = try loop.submit {
            NIOLoopBound(
                HostNetwork(eventLoop: loop, configuration: .init(expose: true), capture: capture), eventLoop: loop)
        }.wait()
        let received = Received()
        let channel = try loop.submit {
            exposed.value.bindUDP(port: 0) { channel in
                try channel.pipeline.syncOperations.addHandler(Collector(received: received))
            }
        }.wait().wait()
        defer { channel.close(promise: nil) }
        XCTAssertEqual(channel.localAddress?.ipAddress, "0.0.0.0")
        let localPort = try XCTUnwrap(channel.localAddress?.port)
        try channel.writeAndFlush(
            AddressedEnvelope(remoteAddress: peerAddress, data: channel.allocator.buffer(string: "any"))
        ).wait()
        XCTAssertEqual(received.waitFor(count: 1), ["echo:any"])
        try channel.close().wait()

        let output = try dump()
        let peerPort = try XCTUnwrap(peerAddress.port)
        XCTAssertTrue(output.contains("127.0.0.1.\(localPort) > 127.0.0.1.\(peerPort): [udp sum ok] UDP, length 3"), output)
        XCTAssertTrue(output.contains("127.0.0.1.\(peerPort) > 127.0.0.1.\(localPort): [udp sum ok] UDP, length 8"), output)
    }

    func testConnectedIPv6SocketDatagramsAreCaptured() throws {
        let peer: any Channel
        do {
            peer = try startEchoPeer(host: "::1")
        } catch {
            throw XCTSkip("no IPv6 loopback: \(error)")
        }
        defer { peer.close(promise: nil) }
        let peerPort = try XCTUnwrap(peer.localAddress?.port)
        let received = Received()
        let network = self.network!
        let channel = try loop.submit {
            network.value.connectUDP(host: "[::1]", port: peerPort) { channel in
                try channel.pipeline.syncOperations.addHandler(Collector(received: received))
            }
        }.wait().wait()
        defer { channel.close(promise: nil) }
        let localPort = try XCTUnwrap(channel.localAddress?.port)
        // A connected channel takes plain buffers too.
        try channel.writeAndFlush(channel.allocator.buffer(string: "v6-odd")).wait()
        XCTAssertEqual(received.waitFor(count: 1), ["echo:v6-odd"])
        try channel.close().wait()

        let output = try dump()
        // Odd lengths exercise the checksum's padding.
        XCTAssertTrue(output.contains("::1.\(localPort) > ::1.\(peerPort): [udp sum ok] UDP, length 6"), output)
        XCTAssertTrue(output.contains("::1.\(peerPort) > ::1.\(localPort): [udp sum ok] UDP, length 11"), output)
        XCTAssertTrue(output.contains("next-header UDP (17)"), output)
        XCTAssertTrue(showsBytes(output, "v6-odd"), output)
        XCTAssertTrue(showsBytes(output, "echo:v6-odd"), output)
    }

    func testUDPAndTCPRecordsShareTheFile() throws {
        // A TCP connection (NIOWritePCAPHandler) and a datagram in one file.
        let server = try ServerBootstrap(group: group)
            .bind(host: "127.0.0.1", port: 0).wait()
        defer { server.close(promise: nil) }
        let peer = try startEchoPeer(host: "127.0.0.1")
        defer { peer.close(promise: nil) }
        let network = self.network!
        let serverPort = try XCTUnwrap(server.localAddress?.port)
        let tcp = try loop.submit {
            network.value.connect(host: "127.0.0.1", port: serverPort, timeout: .seconds(5)) { _ in }
        }.wait().wait()
        try tcp.writeAndFlush(tcp.allocator.buffer(string: "tcp-bytes")).wait()
        let received = Received()
        let udp = try loop.submit {
            network.value.bindUDP(port: 0) { channel in
                try channel.pipeline.syncOperations.addHandler(Collector(received: received))
            }
        }.wait().wait()
        try udp.writeAndFlush(
            AddressedEnvelope(remoteAddress: try XCTUnwrap(peer.localAddress), data: udp.allocator.buffer(string: "udp-bytes"))
        ).wait()
        XCTAssertEqual(received.waitFor(count: 1), ["echo:udp-bytes"])
        try udp.close().wait()
        try tcp.close().wait()

        let output = try dump()
        XCTAssertTrue(showsBytes(output, "tcp-bytes"), output)
        XCTAssertTrue(showsBytes(output, "echo:udp-bytes"), output)
        XCTAssertTrue(output.contains("Flags [S]"), output)
        XCTAssertTrue(output.contains("UDP, length 9"), output)
    }
}

/// Answers each datagram with "echo:" + its payload.
private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        var reply = context.channel.allocator.buffer(string: "echo:")
        reply.writeImmutableBuffer(envelope.data)
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: reply)), promise: nil)
    }
}

/// Collects the payloads a datagram channel reads.
private final class Collector: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let received: Received

    init(received: Received) {
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received.append(String(buffer: unwrapInboundIn(data).data))
    }
}

private final class Received: @unchecked Sendable {
    private let lock = NSLock()
    private var payloads: [String] = []

    func append(_ payload: String) {
        lock.lock()
        payloads.append(payload)
        lock.unlock()
    }

    /// The payloads once there are `count` (or after 5 s).
    func waitFor(count: Int) -> [String] {
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            lock.lock()
            let current = payloads
            lock.unlock()
            if current.count >= count { return current }
            usleep(1000)
        }
        lock.lock()
        defer { lock.unlock() }
        return payloads
    }
}
