import Foundation
import TestSupport
import XCTest

/// Runs every script in examples/ the way its header says, against a mosquitto
/// the test starts (the examples' broker addresses are remapped to it).
///
/// Header lines: `-- test-broker: mosquitto`, `-- test-args: …` (host options),
/// `-- test-before: …` (mosquitto_pub arguments run first; `-m` takes the rest of
/// the line), `-- test-expect: text` (a line of stdout that must appear, in order).
/// `-- test-broker: mosquitto-tls` starts it with a TLS listener (certificates made by
/// the test) and passes `--cafile` and `--remap broker.local:8883=…`. `{freeport}` in
/// test-args becomes a free 127.0.0.1 port; `-- test-client: PEER ARGS` runs a Python
/// peer from `ScenarioTests/Peers` (with `{freeport}`) once stdout shows
/// `-- test-ready: text`, and `-- test-client-expect: text` must be in its output.
final class ExampleTests: XCTestCase {
    static let directory = HostProcess.packageRoot.appendingPathComponent("examples")

    func testEveryExampleRuns() throws {
        let examples = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
            .filter { $0.hasSuffix(".lua") }.sorted()
        XCTAssertGreaterThanOrEqual(examples.count, 6)
        for example in examples {
            try runExample(example)
        }
    }

    func runExample(_ name: String) throws {
        let url = Self.directory.appendingPathComponent(name)
        let header = ExampleHeader(source: try String(contentsOf: url, encoding: .utf8))
        var arguments = header.arguments
        var broker: Mosquitto?
        defer { broker?.stop() }
        let freePort = String(try Mosquitto.freePort())
        arguments = arguments.map { $0.replacingOccurrences(of: "{freeport}", with: freePort) }
        if header.needsTLSBroker {
            let started = try Mosquitto.start(Mosquitto.Options(tls: true))
            broker = started
            arguments += [
                "--cafile", try XCTUnwrap(started.certificates).caFile.path,
                "--remap", "broker.local:8883=127.0.0.1:\(started.tlsPort!)",
            ]
        }
        if header.needsBroker {
            let started = try Mosquitto.start()
            broker = started
            // The examples' broker addresses, remapped to the test broker on 127.0.0.1.
            for host in ["broker.local", "192.168.11.118"] { // remap only, never contacted
                arguments += ["--remap", "\(host)=127.0.0.1:\(started.port)"]
            }
            for before in header.before {
                let result = try started.mosquittoPub(before)
                XCTAssertEqual(result.status, 0, "\(name): mosquitto_pub \(before): \(result.stderr)")
            }
        }
        let running = try HostProcess.launch(arguments + [url.path])
        if let client = header.client {
            XCTAssertTrue(running.waitForOutput(containing: header.ready ?? "", timeout: 10), "\(name): not ready")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", NetModuleTests.peers.appendingPathComponent(client[0]).path]
                + client.dropFirst().map { $0.replacingOccurrences(of: "{freeport}", with: freePort) }
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            for expected in header.clientExpectations {
                XCTAssertTrue(text.contains(expected), "\(name): client output \(text.debugDescription) lacks \(expected.debugDescription)")
            }
        }
        let result = running.wait(timeout: 30)
        XCTAssertFalse(result.timedOut, "\(name): timed out")
        XCTAssertEqual(result.status, 0, "\(name): stderr: \(result.stderr)")
        var lines = result.stdout.split(separator: "\n").map(String.init)[...]
        for expected in header.expectations {
            guard let index = lines.firstIndex(where: { $0.contains(expected) }) else {
                XCTFail("\(name): expected a line containing \(expected.debugDescription) in order; stdout:\n\(result.stdout)")
                break
            }
            lines = lines[(index + 1)...]
        }
    }
}

struct ExampleHeader {
    var needsBroker = false
    var needsTLSBroker = false
    var ready: String?
    var client: [String]?
    var clientExpectations: [String] = []
    var arguments: [String] = []
    var before: [[String]] = []
    var expectations: [String] = []

    init(source: String) {
        for line in source.split(separator: "\n") where line.hasPrefix("-- test-") {
            let body = line.dropFirst(3)
            guard let colon = body.firstIndex(of: ":") else { continue }
            let key = body[..<colon]
            let value = body[body.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "test-broker":
                needsBroker = value == "mosquitto"
                needsTLSBroker = value == "mosquitto-tls"
            case "test-ready": ready = value
            case "test-client": client = value.split(separator: " ").map(String.init)
            case "test-client-expect": clientExpectations.append(value)
            case "test-args": arguments = value.split(separator: " ").map(String.init)
            case "test-expect": expectations.append(value)
            case "test-before":
                var words: [String] = []
                var rest = value.split(separator: " ").map(String.init)[...]
                while let word = rest.popFirst() {
                    words.append(word)
                    if word == "-m" {
                        words.append(rest.joined(separator: " "))
                        break
                    }
                }
                before.append(words)
            default: break
            }
        }
    }
}
