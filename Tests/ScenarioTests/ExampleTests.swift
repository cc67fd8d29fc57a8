import Foundation
import TestSupport
import XCTest

/// Runs every script in examples/ the way its header says, against a mosquitto
/// the test starts (the examples' broker addresses are remapped to it).
///
/// Header lines: `-- test-broker: mosquitto`, `-- test-args: …` (host options),
/// `-- test-before: …` (mosquitto_pub arguments run first; `-m` takes the rest of
/// the line), `-- test-expect: text` (a line of stdout that must appear, in order).
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
        let result = try HostProcess.run(arguments + [url.path], timeout: 30)
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
            case "test-broker": needsBroker = value == "mosquitto"
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
