import HostNet
import NIOCore
import NIOPosix
import XCTest

/// The writer holds bytes back while the channel is not writable, and coalesces a tick's
/// writes into one flush.
final class CoalescingWriterTests: XCTestCase {
    /// Attaches a writer to the channel it is added to.
    private final class WriterHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let writer: CoalescingWriter
        var flushes = 0
        var channel: (any Channel)?

        init(network: HostNetwork) {
            writer = CoalescingWriter(network: network)
            writer.prepareFlush = { [unowned self] in
                flushes += 1
                return CoalescingWriter.FlushCompletion.none
            }
        }

        func handlerAdded(context: ChannelHandlerContext) {
            channel = context.channel
            writer.attach(context: context)
        }
        func handlerRemoved(context: ChannelHandlerContext) { writer.detach() }
        func channelWritabilityChanged(context: ChannelHandlerContext) {
            writer.writabilityChanged()
            context.fireChannelWritabilityChanged()
        }
    }

    func testBytesWaitInTheWriterWhileThePeerDoesNotRead() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let loop = group.next()
        let listener = try loop.submit {
            HostNetwork(eventLoop: loop).listen(port: 0, childInitializer: { channel in
                try channel.syncOptions?.setOption(.autoRead, value: false)
            }, accepted: { _ in })
        }.wait().wait()
        defer { listener.close() }
        let handler = try loop.submit { () -> EventLoopFuture<NIOLoopBound<WriterHandler>> in
            let network = HostNetwork(eventLoop: loop)
            let bound = NIOLoopBound(WriterHandler(network: network), eventLoop: loop)
            return network.connect(host: "127.0.0.1", port: listener.port, timeout: .seconds(5)) { channel in
                try channel.pipeline.syncOperations.addHandler(bound.value)
            }.map { _ in bound }
        }.wait().wait()

        let chunk = [UInt8](repeating: 0x61, count: 1000)
        var largestNIOBuffer = 0
        var stalled = false
        for _ in 0..<50 {  // 50 MB offered in all, far more than the socket buffers take
            let (nio, writable, flushes) = try loop.submit { () -> (Int, Bool, Int) in
                let handler = handler.value
                let before = handler.flushes
                for _ in 0..<1000 { handler.writer.enqueue { $0.writeBytes(chunk) } }
                let nio = try handler.channel?.syncOptions?.getOption(.bufferedWritableBytes) ?? 0
                return (nio, handler.writer.isWritable, handler.flushes - before)
            }.wait()
            XCTAssertLessThanOrEqual(flushes, 1000 * 1000 / CoalescingWriter.eagerFlushBytes + 1, "eager flushes only")
            largestNIOBuffer = max(largestNIOBuffer, nio)
            stalled = stalled || !writable
        }
        XCTAssertTrue(stalled, "the peer's window filled up")
        XCTAssertLessThan(largestNIOBuffer, 256 * 1024)
        let held = try loop.submit { handler.value.writer.bufferedBytes }.wait()
        XCTAssertGreaterThan(held, 0)
    }
}
