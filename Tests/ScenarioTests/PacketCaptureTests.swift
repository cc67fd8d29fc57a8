import Foundation
import TestSupport
import XCTest

/// `--pcap FILE`: the real binary runs an mqtt script against a test-started mosquitto
/// (`tcpdump -r FILE` must show the CONNECT), and a `net` UDP script against a
/// test-started UDP echo (the datagrams both ways).
final class PacketCaptureTests: XCTestCase {
    func testPcapCapturesTheMQTTConnect() throws {
        // Needs tcpdump (scripts/install-deps installs it).
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("pcap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("init.lua")
        try """
            m = mqtt.Client("pcap-test-client", 60)
            m:connect("broker.local", 1883, 0, function(client)
              print("connected")
              client:publish("pcap/topic", "captured-payload", 0, 0, function() client:close() end)
            end)
            """.write(to: script, atomically: true, encoding: .utf8)
        let capture = directory.appendingPathComponent("out.pcap")

        let result = try HostProcess.run(
            ["--remap", "broker.local=127.0.0.1:\(broker.port)", "--pcap", capture.path, script.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "connected\n")

        let dump = try Mosquitto.runTool("tcpdump", ["-n", "-r", capture.path, "-A"])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        XCTAssertTrue(dump.stdout.contains("MQTT"), dump.stdout)
        XCTAssertTrue(dump.stdout.contains("pcap-test-client"), dump.stdout)
        XCTAssertTrue(dump.stdout.contains("captured-payload"), dump.stdout)
        XCTAssertTrue(dump.stdout.contains("127.0.0.1.\(broker.port)"), "the real addresses: \(dump.stdout)")
    }

    func testPcapCapturesUDPDatagramsOfTheNetModule() throws {
        let peer = try NetModuleTests.Peer("tcp_peer.py", ["udpecho"])
        defer { peer.stop() }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("pcap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("init.lua")
        try """
            local port = tonumber(arg[1])
            local u = net.createUDPSocket()
            u:on("receive", function(s, data)
              print("receive", data)
              s:send(port, "127.0.0.1", "quit")
              s:close()
            end)
            u:send(port, "127.0.0.1", "udp-datagram-out")
            """.write(to: script, atomically: true, encoding: .utf8)
        let capture = directory.appendingPathComponent("out.pcap")

        let result = try HostProcess.run(["--pcap", capture.path, script.path, String(peer.port)])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "receive\techo:udp-datagram-out\n")

        let dump = try Mosquitto.runTool("tcpdump", ["-n", "-r", capture.path, "-X"])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        // The socket is bound to 127.0.0.1 (not --expose): the real local address.
        let out = try XCTUnwrap(
            dump.stdout.firstMatch(of: /127\.0\.0\.1\.(\d+) > 127\.0\.0\.1\.(\d+): UDP, length 16/), dump.stdout)
        XCTAssertEqual(Int(out.2), peer.port, dump.stdout)
        let localPort = String(out.1)
        XCTAssertTrue(dump.stdout.contains("127.0.0.1.\(peer.port) > 127.0.0.1.\(localPort): UDP, length 21"), dump.stdout)
        XCTAssertTrue(dump.stdout.contains("127.0.0.1.\(localPort) > 127.0.0.1.\(peer.port): UDP, length 4"), dump.stdout)
        // The payload, in -X's hex columns (its ASCII column breaks lines every 16 bytes).
        let hex = dump.stdout.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("0x"), let colon = trimmed.firstIndex(of: ":") else { return nil }
            let columns = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            return (columns.components(separatedBy: "  ").first ?? "").replacingOccurrences(of: " ", with: "")
        }.joined()
        for payload in ["udp-datagram-out", "echo:udp-datagram-out", "quit"] {
            XCTAssertTrue(hex.contains(payload.utf8.map { String(format: "%02x", $0) }.joined()), "\(payload): \(dump.stdout)")
        }
    }
}
