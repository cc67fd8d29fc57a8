import Foundation
import TestSupport
import XCTest

/// Runs every script under lua/tests through the real binary and compares its
/// stdout (`name.out`), stderr (`name.err`, else empty) and exit status.
///
/// Header lines in the script (`-- key: value`):
///
/// - `-- args: …` host options before the script. `{port}` becomes the port of the
///   mosquitto the test started (with `-- broker: mosquitto`), `{noport}` a 127.0.0.1
///   port nothing listens on (connections are refused). Scripts name brokers by host
///   name (`broker.local`, `refused.local`) and map them here with
///   `--remap broker.local=127.0.0.1:{port}`.
///   `{dir}` becomes the lua/tests folder (board files live in `lua/tests/boards`).
/// - `-- script-args: …` the script's own arguments.
/// - `-- status: N` expected exit status (default 0).
/// - `-- broker: mosquitto` start one mosquitto for all such scripts (on a free
///   127.0.0.1 port). Scripts share it, so each uses its own client ids and topics
///   (the script name as prefix).
/// - `-- firmware: 2.2 3.0` run once per listed profile (`--firmware X` first);
///   the expected files are `name.X.out` / `name.X.err` when they exist, else
///   `name.out` / `name.err`.
///
/// Scripts run a few at a time (each is a separate process); a script must end by
/// itself (idle, `os.exit`, or `--run-for` as a bound).
final class LuaScenarioTests: XCTestCase {
    static let directory = HostProcess.packageRoot.appendingPathComponent("lua/tests")
    /// Scenario processes running at once.
    static let parallelism = 3

    func testEveryScenario() throws {
        let scripts = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
            .filter { $0.hasSuffix(".lua") }.sorted()
        XCTAssertGreaterThan(scripts.count, 10)

        var runs: [ScenarioRun] = []
        for script in scripts {
            let url = Self.directory.appendingPathComponent(script)
            let header = Scenario(source: try String(contentsOf: url, encoding: .utf8))
            for profile in header.profiles {
                runs.append(ScenarioRun(script: script, url: url, header: header, profile: profile))
            }
        }
        var broker: Mosquitto?
        if runs.contains(where: { $0.header.broker == "mosquitto" }) {
            broker = try Mosquitto.start()
        }
        defer { broker?.stop() }
        let noPort = try Mosquitto.freePort()

        var index = 0
        while index < runs.count {
            let batch = runs[index..<min(index + Self.parallelism, runs.count)]
            let running = try batch.map { run in
                try HostProcess.launch(run.arguments(port: broker?.port, noPort: noPort))
            }
            for (run, process) in zip(batch, running) {
                run.check(process.wait(timeout: 30), brokerLog: broker?.log())
            }
            index += batch.count
        }
    }
}

/// One run of a scenario script (one profile).
struct ScenarioRun {
    var script: String
    var url: URL
    var header: Scenario
    /// nil: no `-- firmware:` header (the script's own `-- args:` decide).
    var profile: String?

    var label: String { script + (profile.map { " (firmware \($0))" } ?? "") }

    func arguments(port: Int?, noPort: Int) -> [String] {
        let hostArguments = header.arguments.map {
            $0.replacingOccurrences(of: "{port}", with: port.map(String.init) ?? "{port}")
                .replacingOccurrences(of: "{noport}", with: String(noPort))
                .replacingOccurrences(of: "{dir}", with: LuaScenarioTests.directory.path)
        }
        return (profile.map { ["--firmware", $0] } ?? []) + hostArguments + [url.path] + header.scriptArguments
    }

    /// The expected file `name.X.ext` for profile X, else `name.ext`; empty if neither exists.
    func expected(_ ext: String) -> String {
        let base = url.deletingPathExtension()
        if let profile,
           let text = try? String(contentsOf: URL(fileURLWithPath: base.path + ".\(profile).\(ext)"), encoding: .utf8) {
            return text
        }
        return (try? String(contentsOf: base.appendingPathExtension(ext), encoding: .utf8)) ?? ""
    }

    func check(_ result: HostProcess.Result, brokerLog: String?) {
        let context = header.broker == "mosquitto" ? "\nbroker log:\n\(brokerLog ?? "")" : ""
        XCTAssertFalse(result.timedOut, "\(label): timed out; stdout: \(result.stdout)\(context)")
        XCTAssertEqual(result.status, header.status, "\(label): exit status; stderr: \(result.stderr)")
        XCTAssertEqual(result.stdout, expected("out"), "\(label): stdout")
        XCTAssertEqual(result.stderr, expected("err"), "\(label): stderr")
    }
}

/// The `-- key: value` header of a scenario script.
struct Scenario {
    var arguments: [String] = []
    var scriptArguments: [String] = []
    var status: Int32 = 0
    var broker: String?
    /// `[nil]` without a `-- firmware:` header.
    var profiles: [String?] = [nil]

    init(source: String) {
        for line in source.split(separator: "\n") where line.hasPrefix("-- ") {
            let words = line.dropFirst(3).split(separator: " ").map(String.init)
            guard let key = words.first else { continue }
            let rest = Array(words.dropFirst())
            switch key {
            case "args:": arguments = rest
            case "script-args:": scriptArguments = rest
            case "status:": status = Int32(rest.first ?? "0") ?? 0
            case "broker:": broker = rest.first
            case "firmware:": profiles = rest.isEmpty ? [nil] : rest.map { $0 }
            default: break
            }
        }
    }
}
