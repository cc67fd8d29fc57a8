import HostNet
import MQTT
import NIOCore
import NIOPosix
import TestSupport
import XCTest

/// The writer respects the channel's writability: a publish loop against a peer that does
/// not read fills our buffer, not NIO's.
final class BackpressureTests: XCTestCase {
    func testQoS0PublishLoopAgainstAPeerThatDoesNotReadKeepsNIOsBufferBounded() throws {
        // The peer: answers CONNECT with CONNACK at once, then never reads.
        let peerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? peerGroup.syncShutdownGracefully() }
        let peerLoop = peerGroup.next()
        let listener = try peerLoop.submit {
            HostNetwork(eventLoop: peerLoop).listen(port: 0, childInitializer: { channel in
                try channel.syncOptions?.setOption(.autoRead, value: false)
            }, accepted: { channel in
                channel.writeAndFlush(ByteBuffer(bytes: [0x20, 2, 0, 0]), promise: nil)
            })
        }.wait().wait()
        defer { listener.close() }

        let client = try ClientHarness()
        try client.run { $0.trace = nil }
        try client.connect(port: listener.port, options: MQTTConnectOptions(clientID: Array("bp".utf8)))
        XCTAssertEqual(try client.next(), .tcpConnected)
        XCTAssertEqual(try client.next(), .connected(sessionPresent: false))

        let payload = ByteBuffer(repeating: 0x61, count: 20)
        let topic = ByteBuffer(string: "t")
        var largestNIOBuffer = 0
        var stalled = false
        for _ in 0..<100 {
            let (nioBuffered, writable) = try client.run { client -> (Int, Bool) in
                for _ in 0..<10_000 {
                    try client.publish(topic: topic, payload: payload, qos: 0, retain: false)
                }
                let buffered = try client.channel?.syncOptions?.getOption(.bufferedWritableBytes) ?? 0
                return (buffered, client.isWritable)
            }
            largestNIOBuffer = max(largestNIOBuffer, nioBuffered)
            stalled = stalled || !writable
        }
        XCTAssertTrue(stalled, "the peer's window filled up (else the test proves nothing)")
        // At most one eager flush past the high-water mark (64 KiB each).
        XCTAssertLessThan(largestNIOBuffer, 256 * 1024)
        let ours = try client.run { $0.bufferedBytes }
        XCTAssertGreaterThan(ours, 0, "the rest waits in the client")
        try client.run { $0.abort() }
    }
}
