import Foundation
import TestSupport
import XCTest

/// Runs every script under lua/tests through the real binary and compares its
/// stdout (`name.out`), stderr (`name.err`, else empty) and exit status.
///
/// Header lines in the script: `-- args: …` (host options before the script),
/// `-- script-args: …`, `-- status: N` (default 0).
final class LuaScenarioTests: XCTestCase {
    static let directory = HostProcess.packageRoot.appendingPathComponent("lua/tests")

    func testEveryScenario() throws {
        let scripts = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
            .filter { $0.hasSuffix(".lua") }.sorted()
        XCTAssertGreaterThan(scripts.count, 10)
        for script in scripts {
            try runScenario(script)
        }
    }

    func runScenario(_ script: String) throws {
        let url = Self.directory.appendingPathComponent(script)
        let source = try String(contentsOf: url, encoding: .utf8)
        let header = Scenario(source: source)
        let result = try HostProcess.run(header.arguments + [url.path] + header.scriptArguments, timeout: 30)
        let base = url.deletingPathExtension()
        let expectedOut = (try? String(contentsOf: base.appendingPathExtension("out"), encoding: .utf8)) ?? ""
        let expectedErr = (try? String(contentsOf: base.appendingPathExtension("err"), encoding: .utf8)) ?? ""
        XCTAssertFalse(result.timedOut, "\(script): timed out")
        XCTAssertEqual(result.status, header.status, "\(script): exit status; stderr: \(result.stderr)")
        XCTAssertEqual(result.stdout, expectedOut, "\(script): stdout")
        XCTAssertEqual(result.stderr, expectedErr, "\(script): stderr")
    }
}

/// The `-- key: value` header of a scenario script.
struct Scenario {
    var arguments: [String] = []
    var scriptArguments: [String] = []
    var status: Int32 = 0

    init(source: String) {
        for line in source.split(separator: "\n") where line.hasPrefix("-- ") {
            let words = line.dropFirst(3).split(separator: " ").map(String.init)
            guard let key = words.first else { continue }
            let rest = Array(words.dropFirst())
            switch key {
            case "args:": arguments = rest
            case "script-args:": scriptArguments = rest
            case "status:": status = Int32(rest.first ?? "0") ?? 0
            default: break
            }
        }
    }
}
