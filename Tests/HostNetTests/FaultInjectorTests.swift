import HostNet
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TestSupport
import XCTest

/// Each fault kind of `FaultInjector` on real loopback connections: a plain NIO peer on
/// 127.0.0.1 and a HostNet connection (or a HostNet listener and a plain NIO client).
final class FaultInjectorTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var loop: (any EventLoop)!
    private var network: NIOLoopBound<HostNetwork>!
    private var faults: NIOLoopBound<FaultInjector>!
    private var peer: Peer!

    override func setUpWithError() throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        self.loop = loop
        (network, faults) = try loop.submit {
            let network = HostNetwork(eventLoop: loop)
            let faults = FaultInjector(clock: network.clock)
            network.faults = faults
            return (NIOLoopBound(network, eventLoop: loop), NIOLoopBound(faults, eventLoop: loop))
        }.wait()
        peer = try Peer.start(on: loop)
    }

    override func tearDownWithError() throws {
        peer.server.close(promise: nil)
        network = nil
        faults = nil
        try group.syncShutdownGracefully()
    }

    /// A plain NIO server: what it received, and its accepted channel.
    final class Peer: Sendable {
        let server: any Channel
        let received: NIOLockedValueBox<[UInt8]>
        let accepted: EventLoopPromise<any Channel>
        var port: Int { server.localAddress!.port! }
        var bytes: [UInt8] { received.withLockedValue { $0 } }

        init(server: any Channel, received: NIOLockedValueBox<[UInt8]>, accepted: EventLoopPromise<any Channel>) {
            self.server = server
            self.received = received
            self.accepted = accepted
        }

        static func start(on loop: any EventLoop) throws -> Peer {
            let accepted = loop.makePromise(of: (any Channel).self)
            let received = NIOLockedValueBox<[UInt8]>([])
            let server = try ServerBootstrap(group: loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Collector(box: received, signal: nil))
                        accepted.succeed(channel)
                    }
                }
                .bind(host: "127.0.0.1", port: 0).wait()
            return Peer(server: server, received: received, accepted: accepted)
        }
    }

    /// Collects reads (each read kept apart) and completes `signal` once `count` bytes came.
    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let box: NIOLockedValueBox<[UInt8]>
        var reads: [[UInt8]] = []
        var signal: (count: Int, promise: EventLoopPromise<[[UInt8]]>)?

        init(box: NIOLockedValueBox<[UInt8]>, signal: (Int, EventLoopPromise<[[UInt8]]>)?) {
            self.box = box
            self.signal = signal
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let bytes = Array(unwrapInboundIn(data).readableBytesView)
            reads.append(bytes)
            let total = box.withLockedValue { $0 += bytes; return $0.count }
            if let signal, total >= signal.count {
                self.signal = nil
                signal.promise.succeed(reads)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            signal?.promise.succeed(reads)
            signal = nil
            context.fireChannelInactive()
        }
    }

    private var peerBytes: [UInt8] { peer.bytes }

    /// Connects through HostNet to the peer; the returned future completes once `count`
    /// bytes arrived at the client (or it closed), with the reads as they came.
    private func connect(
        host: String = "127.0.0.1", expecting count: Int = 1
    ) throws -> (channel: any Channel, reads: EventLoopFuture<[[UInt8]]>, box: NIOLockedValueBox<[UInt8]>) {
        let network = self.network!
        let port = peer.port
        let loop = self.loop!
        let box = NIOLockedValueBox<[UInt8]>([])
        let promise = loop.makePromise(of: [[UInt8]].self)
        let channel: any Channel
        do {
            channel = try loop.submit {
                network.value.connect(host: host, port: port, timeout: .seconds(5)) { channel in
                    try channel.pipeline.syncOperations.addHandler(Collector(box: box, signal: (count, promise)))
                }
            }.wait().wait()
        } catch {
            promise.succeed([])
            throw error
        }
        return (channel, promise.futureResult, box)
    }

    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (FaultInjector) -> T) throws -> T {
        let faults = self.faults!
        return try loop.submit { body(faults.value) }.wait()
    }

    private func send(_ text: String, on channel: any Channel) throws {
        try channel.writeAndFlush(ByteBuffer(string: text)).wait()
    }

    func testTargetParsing() throws {
        XCTAssertEqual(try FaultInjector.FaultTarget(parsing: "broker.local:1883"), .init(host: "broker.local", port: 1883))
        XCTAssertEqual(try FaultInjector.FaultTarget(parsing: "10.0.0.5"), .init(host: "10.0.0.5"))
        XCTAssertEqual(try FaultInjector.FaultTarget(parsing: ":80"), .init(port: 80))
        XCTAssertEqual(try FaultInjector.FaultTarget(parsing: "*:80"), .init(port: 80))
        XCTAssertEqual(try FaultInjector.FaultTarget(parsing: "*"), .all)
        XCTAssertEqual(try FaultInjector.FaultTarget(parsing: "[::1]:8883"), .init(host: "::1", port: 8883))
        XCTAssertThrowsError(try FaultInjector.FaultTarget(parsing: "host:99999"))
    }

    func testDropClosesTheConnection() throws {
        let (channel, _, _) = try connect()
        let server = try peer.accepted.futureResult.wait()
        let count = try onLoop { $0.drop(.init(host: "127.0.0.1")) }
        XCTAssertEqual(count, 1)
        try channel.closeFuture.wait()
        try server.closeFuture.wait()  // the peer sees the close too
    }

    func testSelectorByPortLeavesOtherConnectionsAlone() throws {
        let (channel, _, _) = try connect()
        defer { channel.close(promise: nil) }
        XCTAssertEqual(try onLoop { $0.drop(.init(port: 1)) }, 0)
        XCTAssertTrue(channel.isActive)
        XCTAssertEqual(try onLoop { $0.openConnections.count }, 1)
    }

    func testHalfOpenLosesTrafficBothWaysAndStaysOpen() throws {
        let (channel, reads, box) = try connect(expecting: 3)
        let server = try peer.accepted.futureResult.wait()
        try send("one", on: server)
        XCTAssertEqual(try reads.wait().flatMap { $0 }, Array("one".utf8))
        XCTAssertEqual(try onLoop { $0.halfOpen(.all) }, 1)
        try send("lost", on: server)
        try send("gone", on: channel)  // completes, but nothing leaves
        try server.close().wait()  // its FIN is lost too
        // Absence can only be observed over a window: 300 ms on loopback is ample.
        Thread.sleep(forTimeInterval: 0.3)
        XCTAssertEqual(box.withLockedValue { $0 }, Array("one".utf8))
        XCTAssertEqual(peerBytes, [])
        XCTAssertTrue(channel.isActive, "the socket stays open")
        // The statistics count what arrived and what the device wrote, lost or not.
        let statistics = try onLoop { $0.connectionStatistics.map { [$0.bytesIn, $0.bytesOut] } }
        XCTAssertEqual(statistics, [[7, 4]])
        channel.close(promise: nil)
    }

    /// A fault that starts inside a read (a callback reacting to it) must not swallow
    /// that read's read-complete: handlers flush what the read caused on it.
    func testFaultStartingInsideAReadStillCompletesIt() throws {
        final class Reader: ChannelInboundHandler, @unchecked Sendable {
            typealias InboundIn = ByteBuffer
            let faults: FaultInjector
            let completed: EventLoopPromise<Void>
            init(faults: FaultInjector, completed: EventLoopPromise<Void>) {
                self.faults = faults
                self.completed = completed
            }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                faults.halfOpen(.all)
                faults.delay(.all, by: .milliseconds(50))
            }
            func channelReadComplete(context: ChannelHandlerContext) { completed.succeed() }
        }
        let network = self.network!
        let faults = self.faults!
        let port = peer.port
        let completed = loop.makePromise(of: Void.self)
        let channel = try loop.submit {
            network.value.connect(host: "127.0.0.1", port: port, timeout: .seconds(5)) { channel in
                try channel.pipeline.syncOperations.addHandler(Reader(faults: faults.value, completed: completed))
            }
        }.wait().wait()
        defer { channel.close(promise: nil) }
        try send("x", on: try peer.accepted.futureResult.wait())
        try completed.futureResult.wait()
    }

    func testDelayHoldsBytesInBothDirections() throws {
        try onLoop { $0.delay(.all, by: .milliseconds(200)) }
        let (channel, reads, _) = try connect(expecting: 5)
        defer { channel.close(promise: nil) }
        let server = try peer.accepted.futureResult.wait()
        let start = NIODeadline.now()
        try send("hello", on: server)
        XCTAssertEqual(try reads.wait().flatMap { $0 }, Array("hello".utf8))
        XCTAssertGreaterThanOrEqual(NIODeadline.now() - start, .milliseconds(200))
        let outStart = NIODeadline.now()
        try send("back", on: channel)  // the write completes once it is released
        XCTAssertGreaterThanOrEqual(NIODeadline.now() - outStart, .milliseconds(200))
    }

    func testFragmentDeliversOneBytePerRead() throws {
        try onLoop { $0.fragment(.init(host: "127.0.0.1")) }
        let (channel, reads, _) = try connect(expecting: 6)
        defer { channel.close(promise: nil) }
        let server = try peer.accepted.futureResult.wait()
        try send("abcdef", on: server)
        XCTAssertEqual(try reads.wait(), "abcdef".utf8.map { [$0] })
    }

    func testCutAfterNBytesTruncatesAndCloses() throws {
        let port = peer.port
        try onLoop { $0.cutAfter(.init(port: port), bytes: 4) }
        let (channel, reads, _) = try connect(expecting: 100)
        let server = try peer.accepted.futureResult.wait()
        try send("ab", on: channel)  // 2 of 4
        try send("cdefgh", on: server)  // only "cd" gets through, then the cut
        XCTAssertEqual(try reads.wait().flatMap { $0 }, Array("cd".utf8))
        try channel.closeFuture.wait()
        XCTAssertEqual(peerBytes, Array("ab".utf8))
    }

    func testRefusedConnectAndFailedDNS() throws {
        let port = peer.port
        try onLoop {
            $0.refuse(.init(host: "127.0.0.1", port: port))
            $0.failDNS("broker.example")
        }
        XCTAssertThrowsError(try connect()) { error in
            XCTAssertEqual((error as? HostConnectError)?.kind, .refused, "\(error)")
        }
        XCTAssertThrowsError(try connect(host: "broker.example")) { error in
            XCTAssertEqual((error as? HostConnectError)?.kind, .dnsFailure, "\(error)")
        }
        let network = self.network!
        XCTAssertNil(try loop.submit { network.value.resolveIPv4(host: "broker.example") }.wait().wait())
        try onLoop { $0.allow(.all) }  // not the rule made: still refused
        XCTAssertThrowsError(try connect())
        try onLoop { $0.allow(.init(host: "127.0.0.1", port: port)) }
        let (channel, _, _) = try connect()
        channel.close(promise: nil)
    }

    func testRefusedAcceptedConnectionIsClosed() throws {
        let network = self.network!
        let accepted = NIOLockedValueBox(0)
        let listener = try loop.submit {
            network.value.listen(port: 0, childInitializer: { _ in }, accepted: { _ in accepted.withLockedValue { $0 += 1 } })
        }.wait().wait()
        defer { listener.channel.close(promise: nil) }
        try onLoop { $0.refuse(.all) }
        let client = try ClientBootstrap(group: loop).connect(host: "127.0.0.1", port: listener.port).wait()
        try client.closeFuture.wait()
        XCTAssertEqual(accepted.withLockedValue { $0 }, 0, "the device never saw it")
        XCTAssertTrue(try onLoop { $0.log }.contains { $0.contains("refused") })
    }
}
