import Foundation
import TestSupport
import XCTest

/// `--pcap FILE`: the real binary runs an mqtt script against a test-started mosquitto;
/// `tcpdump -r FILE` must show the CONNECT.
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
}
