import Foundation
import HostNet
import MQTTCore
import NIOCore
import NIOPosix

/// A scripted fake MQTT broker on 127.0.0.1 (port 0): accepts connections one after the
/// other, lets the test expect exact bytes or decoded packets from the client, reply with
/// scripted packets, and drop the link with a FIN or a reset.
///
/// All waiting methods are bounded by a timeout and throw `FakeBroker.Failure` on expiry;
/// call them from the test thread (never from an event loop).
public final class FakeBroker: @unchecked Sendable {
    /// A script step did not happen in time, or got something else.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The listening port on 127.0.0.1.
    public let port: Int
    private let group: MultiThreadedEventLoopGroup
    private let serverChannel: any Channel
    private let state: SharedState

    /// Received data and connections, shared with the event loop.
    final class SharedState: @unchecked Sendable {
        let condition = NSCondition()
        var pendingConnections: [Link] = []
        var connectionCount = 0
    }

    /// One accepted client connection.
    public final class Link: @unchecked Sendable {
        let channel: any Channel
        let condition = NSCondition()
        var received = ByteBuffer()
        var decoder = MQTTPacketDecoder()
        var closed = false
        var eof = false

        init(channel: any Channel) { self.channel = channel }

        /// Whether the client has closed its side (EOF) or the link is down.
        public var isClosed: Bool {
            condition.lock()
            defer { condition.unlock() }
            return closed || eof
        }
    }

    private final class Recorder: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let link: Link
        let state: SharedState

        init(link: Link, state: SharedState) {
            self.link = link
            self.state = state
        }

        func channelActive(context: ChannelHandlerContext) {
            state.condition.lock()
            state.pendingConnections.append(link)
            state.connectionCount += 1
            state.condition.broadcast()
            state.condition.unlock()
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var bytes = unwrapInboundIn(data)
            link.condition.lock()
            link.received.writeBuffer(&bytes)
            link.condition.broadcast()
            link.condition.unlock()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .some(.inputClosed) = event as? ChannelEvent {
                link.condition.lock()
                link.eof = true
                link.condition.broadcast()
                link.condition.unlock()
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelInactive(context: ChannelHandlerContext) {
            link.condition.lock()
            link.closed = true
            link.condition.broadcast()
            link.condition.unlock()
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }

    private init(port: Int, group: MultiThreadedEventLoopGroup, serverChannel: any Channel, state: SharedState) {
        self.port = port
        self.group = group
        self.serverChannel = serverChannel
        self.state = state
    }

    /// Starts listening on 127.0.0.1 with an OS-assigned port, or on `port` (e.g. the port
    /// of a broker that was shut down, to let a client reconnect to it).
    public static func start(port requestedPort: Int = 0) throws -> FakeBroker {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let state = SharedState()
        let loop = group.next()
        // Through HostNet like every listener (only HostNet makes bootstraps).
        let listener = try loop.submit {
            HostNetwork(eventLoop: loop).listen(port: requestedPort, childInitializer: { channel in
                try channel.pipeline.syncOperations.addHandler(Recorder(link: Link(channel: channel), state: state))
            }, accepted: { _ in })
        }.wait().wait()
        let channel = listener.channel
        guard let port = channel.localAddress?.port else { throw Failure("no local port") }
        return FakeBroker(port: port, group: group, serverChannel: channel, state: state)
    }

    /// Stops listening, closes all links and the event loop group.
    public func shutdown() {
        try? serverChannel.close().wait()
        try? group.syncShutdownGracefully()
    }

    /// Number of connections accepted so far.
    public var connectionCount: Int {
        state.condition.lock()
        defer { state.condition.unlock() }
        return state.connectionCount
    }

    /// Waits for the next accepted connection.
    public func accept(timeout: TimeInterval = 5) throws -> Link {
        let deadline = Date().addingTimeInterval(timeout)
        state.condition.lock()
        defer { state.condition.unlock() }
        while state.pendingConnections.isEmpty {
            guard state.condition.wait(until: deadline) else { throw Failure("no connection within \(timeout) s") }
        }
        return state.pendingConnections.removeFirst()
    }
}

extension FakeBroker.Link {
    private func wait(timeout: TimeInterval, _ what: String, until ready: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !ready() {
            guard condition.wait(until: deadline) else {
                throw FakeBroker.Failure("\(what) did not happen within \(timeout) s; unread bytes: \(received.readableBytesView.map { $0 })")
            }
        }
    }

    /// Waits for exactly these bytes next from the client.
    public func expect(bytes: [UInt8], timeout: TimeInterval = 5) throws {
        try wait(timeout: timeout, "receiving \(bytes.count) bytes") { received.readableBytes >= bytes.count || closed }
        condition.lock()
        defer { condition.unlock() }
        guard let got = received.readBytes(length: bytes.count) else {
            throw FakeBroker.Failure("link closed before \(bytes) arrived; got \(received.readableBytesView.map { $0 })")
        }
        guard got == bytes else { throw FakeBroker.Failure("expected bytes \(bytes), got \(got)") }
    }

    /// Waits for the next complete packet from the client and decodes it.
    public func nextPacket(timeout: TimeInterval = 5) throws -> MQTTPacket {
        var decoded: MQTTInbound?
        var failure: Error?
        try wait(timeout: timeout, "receiving a packet") {
            do {
                decoded = try decoder.next(from: &received)
            } catch {
                failure = error
            }
            return decoded != nil || failure != nil || (closed && received.readableBytes == 0)
        }
        if let failure { throw failure }
        guard case .packet(let packet) = decoded else {
            throw FakeBroker.Failure("link closed while waiting for a packet")
        }
        return packet
    }

    /// Waits for the next packet and checks that it equals `packet`.
    public func expect(_ packet: MQTTPacket, timeout: TimeInterval = 5) throws {
        let got = try nextPacket(timeout: timeout)
        guard got == packet else { throw FakeBroker.Failure("expected \(packet.traceDescription), got \(got.traceDescription)") }
    }

    /// Sends a packet to the client.
    public func send(_ packet: MQTTPacket) throws {
        try send(bytes: packet.bytes)
    }

    /// Sends raw bytes to the client.
    public func send(bytes: [UInt8]) throws {
        try channel.writeAndFlush(ByteBuffer(bytes: bytes)).wait()
    }

    /// Closes the link normally (FIN).
    public func close() {
        try? channel.close().wait()
    }

    /// Aborts the link (RST: SO_LINGER 0, then close).
    public func reset() {
        if let provider = channel as? any SocketOptionProvider {
            _ = try? provider.setSoLinger(linger(l_onoff: 1, l_linger: 0)).wait()
        }
        try? channel.close().wait()
    }

    /// Waits until the client has closed the connection (EOF), with no unread packet left.
    public func expectClosed(timeout: TimeInterval = 5) throws {
        try wait(timeout: timeout, "client closing the link") { eof || closed }
        condition.lock()
        defer { condition.unlock() }
        guard received.readableBytes == 0 else {
            throw FakeBroker.Failure("client closed with unread bytes \(received.readableBytesView.map { $0 })")
        }
    }

    /// Bytes received and not yet consumed by an expectation.
    public var unreadBytes: [UInt8] {
        condition.lock()
        defer { condition.unlock() }
        return Array(received.readableBytesView)
    }
}
