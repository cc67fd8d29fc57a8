import Foundation
import TestSupport
import XCTest

/// Every row of the `m:connect` parsing table (behaviour spec §2.6), in both profiles,
/// through the real binary against a mosquitto the test starts.
///
/// Each row runs twice per profile: once against the broker (which callback reports the
/// CONNACK?) and once against a port nothing listens on (which callback gets
/// connfail(-5)?). A pre-registered `m:on("connect")` shows when the connect slot was not
/// given a function. Every success path closes the client, so each run ends by itself;
/// the runs go a few at a time. Checked: stdout (return values, deprecation notes,
/// callbacks) and stderr (quirk warnings, §0.3).
final class MQTTConnectParsingTests: XCTestCase {
    struct Row {
        /// The call, with `h` for the host.
        var call: String
        var v22: Expect
        /// nil: not run in 3.0.
        var v30: Expect?
    }

    struct Expect {
        /// Callback lines against the broker / a refused port.
        var broker: String
        var refused: String
        /// Deprecation notes (stdout, before the return line).
        var notes: [String] = []
        /// The warning after `m:connect: ` (stderr), if any.
        var warning: String?
    }

    static let secureNote = "Warning, deprecated API! mqtt.connect secure parameter as integer. It will be removed in the future. See documentation for details."
    static let autoreconnectNote = "Warning, deprecated API! autoreconnect == 1 is deprecated. It will be removed in the next version. See documentation for details."

    static let rows: [Row] = [
        Row(call: "m:connect(h, f1, f2)",
            v22: Expect(broker: "f1", refused: "f2 -5"),
            v30: Expect(broker: "f1", refused: "f2 -5")),
        Row(call: "m:connect(h, 1883, 0, f1, f2)",
            v22: Expect(broker: "f1", refused: "f2 -5"),
            v30: Expect(broker: "f1", refused: "f2 -5", notes: [secureNote])),
        Row(call: "m:connect(h, 1883, 0, 1, f1, f2)",
            v22: Expect(broker: "f1", refused: "f2 -5", notes: [autoreconnectNote]),
            v30: Expect(broker: "on-connect", refused: "f1 -5", notes: [secureNote],
                        warning: "argument 4 (1) fills the connect-callback slot; argument 5 (function) becomes the connfail callback; argument 6 (function) is ignored")),
        Row(call: "m:connect(h, 1883, false, f1, f2)",
            v22: Expect(broker: "on-connect", refused: "f1 -5",
                        warning: "argument 3 (false) fills the connect-callback slot; argument 4 (function) becomes the connfail callback; argument 5 (function) is ignored"),
            v30: Expect(broker: "f1", refused: "f2 -5")),
        Row(call: "m:connect(h, 1883, nil, f1)",
            v22: Expect(broker: "on-connect", refused: "f1 -5",
                        warning: "argument 3 (nil) fills the connect-callback slot; argument 4 (function) becomes the connfail callback"),
            v30: Expect(broker: "on-connect", refused: "f1 -5",
                        warning: "argument 3 (nil) fills the connect-callback slot; argument 4 (function) becomes the connfail callback")),
        Row(call: "m:connect(h, 11214, 0, 1)",
            v22: Expect(broker: "on-connect", refused: "", notes: [autoreconnectNote]),
            v30: Expect(broker: "on-connect", refused: "", notes: [secureNote],
                        warning: "argument 4 (1) fills the connect-callback slot")),
        // Warning rule (c) of §0.3: nil in the connect slot at the full-signature position
        // (2.2: argument 5, 3.0: argument 4) is no quirk.
        Row(call: "m:connect(h, 1883, 0, 0, nil, f2)",
            v22: Expect(broker: "on-connect", refused: "f2 -5"),
            v30: Expect(broker: "on-connect", refused: "", notes: [secureNote],
                        warning: "argument 4 (0) fills the connect-callback slot; argument 6 (function) is ignored")),
        Row(call: "m:connect(h, 1883, false, nil, f2)",
            v22: Expect(broker: "on-connect", refused: "",
                        warning: "argument 3 (false) fills the connect-callback slot; argument 5 (function) is ignored"),
            v30: Expect(broker: "on-connect", refused: "f2 -5")),
        // Warning rule (b) for the connfail slot: a value that is neither a function nor nil.
        Row(call: "m:connect(h, 1883, 0, 0, f1, 1)",
            v22: Expect(broker: "f1", refused: "",
                        warning: "argument 6 (1) fills the connfail-callback slot"),
            v30: Expect(broker: "on-connect", refused: "f1 -5", notes: [secureNote],
                        warning: "argument 4 (0) fills the connect-callback slot; argument 5 (function) becomes the connfail callback; argument 6 (1) is ignored")),
        // Not rows of the spec's table: the 2.2 rule "secure / autoreconnect other than 0 or
        // 1 becomes 0" (no TLS, no note); in 3.0 the 5 lands in the connect slot.
        Row(call: "m:connect(h, 1883, 0, 5, f1, f2)",
            v22: Expect(broker: "f1", refused: "f2 -5"),
            v30: Expect(broker: "on-connect", refused: "f1 -5", notes: [secureNote],
                        warning: "argument 4 (5) fills the connect-callback slot; argument 5 (function) becomes the connfail callback; argument 6 (function) is ignored")),
        Row(call: "m:connect(h, 1883, 7, 0, f1, f2)",
            v22: Expect(broker: "f1", refused: "f2 -5"),
            v30: nil),
    ]

    func script(_ row: Row, host: String, id: String) -> String {
        // Line 5 holds the call (warnings name it).
        """
        local m = mqtt.Client("\(id)", 30, "", "", 1)
        m:on("connect", function(c) print("on-connect") c:close() end)
        local function f1(c, reason) print("f1" .. (reason and " " .. reason or "")) if not reason then c:close() end end
        local function f2(c, reason) print("f2" .. (reason and " " .. reason or "")) if not reason then c:close() end end
        local h = "\(host)"; local r = table.pack(\(row.call))
        print("returns", r.n, r[1])
        """
    }

    func testEveryRowInBothProfiles() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let refused = try Mosquitto.freePort()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parsing-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        struct Run {
            var label: String
            var arguments: [String]
            var stdout: String
            var stderr: String
        }
        var runs: [Run] = []
        for (index, row) in Self.rows.enumerated() {
            for profile in ["2.2", "3.0"] {
                guard let expect = profile == "2.2" ? row.v22 : row.v30 else { continue }
                for target in ["broker", "refused"] {
                    let id = "parsing_\(index)_\(profile)_\(target)"
                    let script = directory.appendingPathComponent("\(id).lua")
                    try self.script(row, host: "\(target).local", id: id).write(to: script, atomically: true, encoding: .utf8)
                    let callbacks = target == "broker" ? expect.broker : expect.refused
                    let returns = profile == "2.2" ? "returns\t1\ttrue" : "returns\t0\tnil"
                    let stdout = expect.notes + [returns] + (callbacks.isEmpty ? [] : [callbacks])
                    runs.append(Run(
                        label: "\(row.call) [\(profile), \(target)]",
                        arguments: [
                            "--firmware", profile,
                            "--remap", "broker.local:1883=127.0.0.1:\(broker.port)",
                            "--remap", "broker.local:11214=127.0.0.1:\(broker.port)",
                            "--remap", "refused.local=127.0.0.1:\(refused)",
                            script.path,
                        ],
                        stdout: stdout.map { $0 + "\n" }.joined(),
                        stderr: expect.warning.map { "nodemcu-host: warning: \(id).lua:5: m:connect: \($0) (firmware \(profile))\n" } ?? ""))
                }
            }
        }
        var index = 0
        while index < runs.count {
            let batch = Array(runs[index..<min(index + 4, runs.count)])
            let processes = try batch.map { try HostProcess.launch($0.arguments) }
            for (run, process) in zip(batch, processes) {
                let result = process.wait(timeout: 20)
                XCTAssertFalse(result.timedOut, "\(run.label): timed out")
                XCTAssertEqual(result.status, 0, "\(run.label): status; stderr: \(result.stderr)")
                XCTAssertEqual(result.stdout, run.stdout, run.label)
                XCTAssertEqual(result.stderr, run.stderr, run.label)
            }
            index += batch.count
        }
    }
}
