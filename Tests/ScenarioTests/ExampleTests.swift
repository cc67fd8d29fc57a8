import Foundation
import TestSupport
import XCTest

/// Runs every script in examples/ whose header says how to test it, through the real
/// binary. Header lines (anywhere among the script's leading `--` comments):
///
/// - `-- test-args: …` host options (e.g. `--run-for 2` to bound a script that never
///   ends by itself). `{port}` becomes the test broker's port.
/// - `-- test-broker: mosquitto` start a mosquitto on a free 127.0.0.1 port and remap the
///   addresses examples use for their broker (`broker.local` and the seed document's
///   192.168.11.118, any port) to it.
/// - `-- test-firmware: 2.2 3.0` run once per listed profile (default: once, with the
///   host's default profile or whatever test-args say).
/// - `-- test-status: N` expected exit status (default 0).
/// - `-- test-expect: text` stdout must contain this line (repeatable).
/// - `name.out` next to the example: stdout must equal it (for examples whose output
///   does not depend on timing).
///
/// Always checked: the run ends in time, with the expected status, and stderr holds
/// nothing but quirk warnings (`nodemcu-host: warning: …`).
final class ExampleTests: XCTestCase {
    static let directory = HostProcess.packageRoot.appendingPathComponent("examples")

    struct Header {
        var arguments: [String] = []
        var broker: String?
        var profiles: [String?] = [nil]
        var status: Int32 = 0
        var expectedLines: [String] = []
        var isTestable = false

        init(source: String) {
            for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
                guard line.hasPrefix("-- test-") else { continue }
                let body = line.dropFirst(3)
                guard let colon = body.firstIndex(of: ":") else { continue }
                let key = String(body[..<colon])
                let value = body[body.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                isTestable = true
                switch key {
                case "test-args": arguments = value.split(separator: " ").map(String.init)
                case "test-broker": broker = value
                case "test-firmware": profiles = value.split(separator: " ").map(String.init)
                case "test-status": status = Int32(value) ?? 0
                case "test-expect": expectedLines.append(value)
                default: isTestable = true
                }
            }
        }
    }

    func testEveryExampleWithATestHeader() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
            .filter { $0.hasSuffix(".lua") }.sorted()
        let examples = try names.map { name -> (String, Header) in
            let url = Self.directory.appendingPathComponent(name)
            return (name, Header(source: try String(contentsOf: url, encoding: .utf8)))
        }.filter { $0.1.isTestable }
        guard !examples.isEmpty else {
            throw XCTSkip("no example in examples/ has a `-- test-…` header yet (\(names.joined(separator: ", ")))")
        }
        var broker: Mosquitto?
        if examples.contains(where: { $0.1.broker == "mosquitto" }) { broker = try Mosquitto.start() }
        defer { broker?.stop() }

        for (name, header) in examples {
            let url = Self.directory.appendingPathComponent(name)
            var arguments = header.arguments.map { argument in
                argument.replacingOccurrences(of: "{port}", with: broker.map { String($0.port) } ?? "{port}")
            }
            if header.broker == "mosquitto", let broker {
                arguments += ["--remap", "broker.local=127.0.0.1:\(broker.port)", "--remap", "192.168.11.118=127.0.0.1:\(broker.port)"]
            }
            for profile in header.profiles {
                let label = name + (profile.map { " (firmware \($0))" } ?? "")
                let result = try HostProcess.run((profile.map { ["--firmware", $0] } ?? []) + arguments + [url.path], timeout: 30)
                XCTAssertFalse(result.timedOut, "\(label): timed out")
                XCTAssertEqual(result.status, header.status, "\(label): exit status; stdout: \(result.stdout) stderr: \(result.stderr)")
                let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                for expected in header.expectedLines {
                    XCTAssertTrue(lines.contains(expected), "\(label): stdout lacks the line \"\(expected)\": \(result.stdout)")
                }
                let out = url.deletingPathExtension().appendingPathExtension("out")
                if let expected = try? String(contentsOf: out, encoding: .utf8) {
                    XCTAssertEqual(result.stdout, expected, "\(label): stdout")
                }
                let unexpected = result.stderr.split(separator: "\n").filter { !$0.hasPrefix("nodemcu-host: warning: ") }
                XCTAssertEqual(unexpected, [], "\(label): stderr holds more than quirk warnings")
            }
        }
    }
}
