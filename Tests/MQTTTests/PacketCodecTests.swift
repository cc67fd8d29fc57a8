import MQTTCore
import NIOCore
import TestSupport
import XCTest

final class PacketCodecTests: XCTestCase {
    private func s(_ text: String) -> [UInt8] { [UInt8(text.utf8.count >> 8), UInt8(text.utf8.count & 0xFF)] + Array(text.utf8) }

    /// (packet, exact bytes from the MQTT 3.1.1 layouts)
    private var vectors: [(MQTTPacket, [UInt8])] {
        [
            (.connect(ConnectPacket(clientID: Array("id".utf8), keepAlive: 60, cleanSession: true)),
             [0x10, 14] + s("MQTT") + [4, 0x02, 0, 60] + s("id")),
            (.connect(ConnectPacket(
                clientID: Array("c".utf8), keepAlive: 10, cleanSession: false,
                will: .init(topic: Array("w".utf8), message: Array("bye".utf8), qos: 1, retain: true),
                username: Array("u".utf8), password: Array("p".utf8))),
             [0x10, 27] + s("MQTT") + [4, 0xEC, 0, 10] + s("c") + s("w") + s("bye") + s("u") + s("p")),
            (.connect(ConnectPacket(clientID: Array("c".utf8), keepAlive: 0, cleanSession: true, password: Array("p".utf8))),
             [0x10, 16] + s("MQTT") + [4, 0x42, 0, 0] + s("c") + s("p")),
            (Packets.connAck(0), [0x20, 2, 0, 0]),
            (Packets.connAck(5, sessionPresent: true), [0x20, 2, 1, 5]),
            (Packets.publish("a/b", "hi"), [0x30, 7] + s("a/b") + Array("hi".utf8)),
            (Packets.publish("a", "x", qos: 1, retain: true, id: 10), [0x33, 6] + s("a") + [0, 10] + Array("x".utf8)),
            (Packets.publish("a", "", qos: 2, dup: true, id: 0x1234), [0x3C, 5] + s("a") + [0x12, 0x34]),
            (Packets.pubAck(1), [0x40, 2, 0, 1]),
            (Packets.pubRec(2), [0x50, 2, 0, 2]),
            (Packets.pubRel(3), [0x62, 2, 0, 3]),
            (Packets.pubComp(0xFFFF), [0x70, 2, 0xFF, 0xFF]),
            (Packets.subscribe(1, [("a/#", 0), ("b", 2)]), [0x82, 12, 0, 1] + s("a/#") + [0] + s("b") + [2]),
            (Packets.subAck(1, [0, 1, 2, 0x80]), [0x90, 6, 0, 1, 0, 1, 2, 0x80]),
            (Packets.unsubscribe(7, ["a", "bc"]), [0xA2, 9, 0, 7] + s("a") + s("bc")),
            (Packets.unsubAck(7), [0xB0, 2, 0, 7]),
            (.pingReq, [0xC0, 0]),
            (.pingResp, [0xD0, 0]),
            (.disconnect, [0xE0, 0]),
        ]
    }

    func testEveryPacketTypeEncodesToSpecBytesAndDecodesBack() throws {
        var seen = Set<MQTTPacketType>()
        for (packet, bytes) in vectors {
            XCTAssertEqual(packet.bytes, bytes, "\(packet.type)")
            XCTAssertEqual(try Packets.decodeAll(bytes), [.packet(packet)], "\(packet.type)")
            seen.insert(packet.type)
        }
        XCTAssertEqual(seen.count, 14)
    }

    func testVariableLengthBoundaries() throws {
        for (value, encoded) in [
            (0, [0x00]), (127, [0x7F]), (128, [0x80, 0x01]), (16_383, [0xFF, 0x7F]),
            (16_384, [0x80, 0x80, 0x01]), (2_097_151, [0xFF, 0xFF, 0x7F]),
            (2_097_152, [0x80, 0x80, 0x80, 0x01]), (268_435_455, [0xFF, 0xFF, 0xFF, 0x7F]),
        ] as [(Int, [UInt8])] {
            var buffer = ByteBuffer()
            MQTTSerializer.writeVariableLength(value, to: &buffer)
            XCTAssertEqual(buffer.bytes, encoded)
            XCTAssertEqual(MQTTSerializer.variableLengthSize(value), encoded.count)
            XCTAssertEqual(try MQTTSerializer.peekVariableLength(in: buffer, at: 0), .value(value, byteCount: encoded.count))
        }
    }

    func testPublishEncodingAtLengthBoundariesAppendsAfterExistingBytes() throws {
        // remaining = 2 + 1 (topic) + payload: 127/128 and 16 383/16 384 switch the
        // length field from 1 to 2 and from 2 to 3 bytes.
        for (payloadCount, header) in [
            (124, [0x30, 0x7F]), (125, [0x30, 0x80, 0x01]),
            (16_380, [0x30, 0xFF, 0x7F]), (16_381, [0x30, 0x80, 0x80, 0x01]),
        ] as [(Int, [UInt8])] {
            let payload = (0..<payloadCount).map { UInt8($0 & 0xFF) }
            let packet = PublishPacket(topic: ByteBuffer(string: "t"), payload: ByteBuffer(bytes: payload))
            var buffer = ByteBuffer(bytes: [0xAA, 0xBB])
            packet.write(to: &buffer)
            XCTAssertEqual(buffer.readBytes(length: 2), [0xAA, 0xBB], "what was there is kept")
            XCTAssertEqual(buffer.readableBytes, packet.encodedSize)
            XCTAssertEqual(buffer.readBytes(length: header.count), header)
            XCTAssertEqual(buffer.readBytes(length: 3), [0, 1, UInt8(ascii: "t")])
            XCTAssertEqual(buffer.readBytes(length: buffer.readableBytes), payload)
        }
    }

    func testLargePublishRoundTrip() throws {
        let payload = (0..<200_000).map { UInt8($0 & 0xFF) }
        let packet = Packets.publish("big", bytes: payload, qos: 1, id: 99)
        let bytes = packet.bytes
        XCTAssertEqual(bytes[0], 0x32)
        XCTAssertEqual(Array(bytes[1...3]), [0xC7, 0x9A, 0x0C])  // 200_007 as variable length
        XCTAssertEqual(try Packets.decodeAll(bytes), [.packet(packet)])
    }

    func testMalformedPacketsAreRejected() {
        let table: [(String, [UInt8])] = [
            ("unknown type 0", [0x00, 0x00]),
            ("unknown type 15", [0xF0, 0x00]),
            ("PUBACK flags", [0x41, 2, 0, 1]),
            ("PUBREL flags 0", [0x60, 2, 0, 1]),
            ("SUBSCRIBE flags 0", [0x80, 6, 0, 1] + s("a") + [0]),
            ("CONNACK flags", [0x28, 2, 0, 0]),
            ("PINGRESP flags", [0xD1, 0]),
            ("QoS 3", [0x36, 5] + s("a") + [0, 1]),
            ("remaining length 5 bytes", [0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            ("PUBACK id 0", [0x40, 2, 0, 0]),
            ("PUBLISH QoS 1 id 0", [0x32, 5] + s("a") + [0, 0]),
            ("SUBACK id 0", [0x90, 3, 0, 0, 0]),
            ("UNSUBACK id 0", [0xB0, 2, 0, 0]),
            ("SUBSCRIBE id 0", [0x82, 6, 0, 0] + s("a") + [0]),
            ("CONNACK reserved bits", [0x20, 2, 0x02, 0]),
            ("CONNACK too long", [0x20, 3, 0, 0, 0]),
            ("PUBACK too short", [0x40, 1, 0]),
            ("PINGRESP with body", [0xD0, 1, 0]),
            ("topic longer than packet", [0x30, 4, 0, 9, 0x61, 0x62]),
            ("QoS 1 without id", [0x32, 3] + s("a")),
            ("topic surrogate", [0x30, 5] + [0, 3, 0xED, 0xA0, 0x80]),
            ("topic U+0000", [0x30, 5] + [0, 3, 0x61, 0x00, 0x62]),
            ("topic overlong", [0x30, 4] + [0, 2, 0xC0, 0x80]),
            ("topic truncated sequence", [0x30, 3] + [0, 1, 0xE2]),
            ("topic invalid byte", [0x30, 3] + [0, 1, 0xFF]),
            ("topic above U+10FFFF", [0x30, 6] + [0, 4, 0xF4, 0x90, 0x80, 0x80]),
            ("SUBACK bad return code", [0x90, 3, 0, 1, 3]),
            ("SUBACK no return codes", [0x90, 2, 0, 1]),
            ("SUBSCRIBE bad QoS", [0x82, 6, 0, 1] + s("a") + [3]),
            ("SUBSCRIBE no topics", [0x82, 2, 0, 1]),
            ("UNSUBSCRIBE no topics", [0xA2, 2, 0, 1]),
            ("CONNECT wrong protocol", [0x10, 12] + s("MQIsdp").prefix(8) + [3, 2, 0, 0]),
            ("CONNECT level 3", [0x10, 12] + s("MQTT") + [3, 2, 0, 60] + s("")),
            ("CONNECT reserved flag", [0x10, 12] + s("MQTT") + [4, 3, 0, 60] + s("")),
            ("CONNECT will QoS 3", [0x10, 16] + s("MQTT") + [4, 0x1E, 0, 60] + s("") + s("") + s("")),
            ("CONNECT trailing bytes", [0x10, 13] + s("MQTT") + [4, 2, 0, 60] + s("") + [0]),
        ]
        for (name, bytes) in table {
            XCTAssertThrowsError(try Packets.decodeAll(bytes), name) { error in
                XCTAssertTrue(error is MQTTProtocolError, "\(name): \(error)")
            }
        }
    }

    func testValidUTF8TopicsAreAccepted() throws {
        let topic = "ä/€/𝄞/\u{7F}"
        let bytes = Packets.publish(topic, "x").bytes
        guard case .packet(.publish(let p)) = try Packets.decodeAll(bytes).first else { return XCTFail() }
        XCTAssertEqual(String(buffer: p.topic), topic)
    }

    func testEveryTruncationWaitsAndNeverThrows() throws {
        for (packet, bytes) in vectors {
            for length in 0..<bytes.count {
                XCTAssertEqual(try Packets.decodeAll(Array(bytes.prefix(length))), [], "\(packet.type) prefix \(length)")
            }
        }
    }

    func testRandomSplitsOfAValidStreamDecodeIdentically() throws {
        var stream: [UInt8] = []
        var expected: [MQTTInbound] = []
        for _ in 0..<3 {
            for (packet, bytes) in vectors {
                stream += bytes
                expected.append(.packet(packet))
            }
        }
        let big = Packets.publish("big", bytes: Array(repeating: 7, count: 3000), qos: 2, id: 5)
        stream += big.bytes
        expected.append(.packet(big))
        var rng = SeededGenerator(seed: 0x5EED)
        for _ in 0..<300 {
            var decoder = MQTTPacketDecoder()
            var buffer = ByteBuffer()
            var items: [MQTTInbound] = []
            var offset = 0
            while offset < stream.count {
                let size = Int.random(in: 1...64, using: &rng)
                let end = min(stream.count, offset + size)
                buffer.writeBytes(stream[offset..<end])
                offset = end
                while let item = try decoder.next(from: &buffer) { items.append(item) }
            }
            XCTAssertEqual(items, expected)
            XCTAssertEqual(buffer.readableBytes, 0)
        }
    }

    // MARK: - Oversized PUBLISH

    func testOversizedPublishReportsTopicAndPartialPayloadAndSkipsTheRest() throws {
        let payload = Array("0123456789".utf8)
        let big = Packets.publish("t/x", bytes: payload, qos: 1, id: 3)  // 2+15 bytes total 17
        let bytes = big.bytes + Packets.pubAck(9).bytes
        XCTAssertEqual(big.bytes.count, 19)
        // limit 12: header 2 + topic 5 + id 2 = 9 → 3 payload bytes inside the limit
        let items = try Packets.decodeAll(bytes, maxPacketSize: 12)
        XCTAssertEqual(items.count, 2)
        guard case .oversizedPublish(let over) = items[0] else { return XCTFail("\(items)") }
        XCTAssertEqual(String(buffer: over.topic), "t/x")
        XCTAssertEqual(over.partialPayload.bytes, Array("012".utf8))
        XCTAssertEqual(over.packetID, 3)
        XCTAssertEqual(over.qos, 1)
        XCTAssertEqual(over.packetSize, 19)
        XCTAssertEqual(items[1], .packet(Packets.pubAck(9)))
        // At the limit exactly: a normal message.
        XCTAssertEqual(try Packets.decodeAll(big.bytes, maxPacketSize: 19), [.packet(big)])
        // Limit inside the topic: topic still reported, empty partial payload.
        guard case .oversizedPublish(let tiny) = try Packets.decodeAll(bytes, maxPacketSize: 4).first else { return XCTFail() }
        XCTAssertEqual(String(buffer: tiny.topic), "t/x")
        XCTAssertEqual(tiny.partialPayload.readableBytes, 0)
    }

    func testOversizedPathRejectsMalformedPublishLikeTheNormalPath() {
        // remaining length 1: no room for the topic length, whatever follows in the stream
        for bytes: [UInt8] in [[0x30, 1, 0], [0x30, 1, 0, 0xD0, 0], [0x32, 4, 0, 2, 0x61, 0x62]] {
            XCTAssertThrowsError(try Packets.decodeAll(bytes, maxPacketSize: 2), "\(bytes)")
        }
    }

    func testAnnounced256MBPacketIsSkippedWithoutBuffering() throws {
        var decoder = MQTTPacketDecoder(maxPacketSize: 1024)
        let remaining = MQTTSerializer.maxRemainingLength  // 256 MB - 1
        var header = ByteBuffer()
        header.writeInteger(UInt8(0x30))
        MQTTSerializer.writeVariableLength(remaining, to: &header)
        header.writeBytes(s("huge"))
        var buffer = header
        var items: [MQTTInbound] = []
        let chunk = ByteBuffer(repeating: 0x41, count: 1 << 20)
        var fed = 2 + 4  // topic
        buffer.writeImmutableBuffer(chunk)
        fed += chunk.readableBytes
        while let item = try decoder.next(from: &buffer) { items.append(item) }
        XCTAssertEqual(items.count, 1)
        guard case .oversizedPublish(let over) = items[0] else { return XCTFail() }
        XCTAssertEqual(over.partialPayload.readableBytes, 1024 - 5 - 6)
        XCTAssertEqual(buffer.readableBytes, 0, "skipped bytes are consumed, not kept")
        // Feed the rest in 1 MB chunks; memory stays bounded by the chunk size.
        while fed < remaining {
            var more = chunk.getSlice(at: 0, length: min(chunk.readableBytes, remaining - fed))!
            fed += more.readableBytes
            XCTAssertNil(try decoder.next(from: &more))
            XCTAssertEqual(more.readableBytes, 0)
        }
        var next = ByteBuffer(bytes: Packets.pubAck(1).bytes)
        XCTAssertEqual(try decoder.next(from: &next), .packet(Packets.pubAck(1)))
    }

    func testAnnouncedHugePacketWithoutLimitDoesNotAllocateUpFront() throws {
        var decoder = MQTTPacketDecoder()
        var buffer = ByteBuffer(bytes: [0x30, 0xFF, 0xFF, 0xFF, 0x7F] + s("a"))
        let capacity = buffer.capacity
        XCTAssertNil(try decoder.next(from: &buffer))
        XCTAssertEqual(buffer.capacity, capacity)
        XCTAssertEqual(buffer.readableBytes, 8, "incomplete packet stays for later")
    }

    func testTraceDescriptions() {
        XCTAssertEqual(
            Packets.publish("a/b", "hello", qos: 1, id: 3).traceDescription,
            "PUBLISH id=3 qos=1 retain=0 dup=0 topic=\"a/b\" len=5")
        XCTAssertEqual(Packets.pubAck(7).traceDescription, "PUBACK id=7")
        XCTAssertEqual(Packets.subscribe(2, [("a/#", 1)]).traceDescription, "SUBSCRIBE id=2 topics=\"a/#\":1")
        XCTAssertEqual(MQTTPacket.pingReq.traceDescription, "PINGREQ")
    }
}
