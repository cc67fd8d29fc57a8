import Foundation
import MQTT
import TestSupport
import XCTest

/// The porting-test toolkit through the real binary: virtual time, --speed, --heap,
/// --strict, --report and the `test` runner (issue 16).
final class PortingTests: XCTestCase {
    static let examples = HostProcess.packageRoot.appendingPathComponent("examples/porting")
    static let fixtures = HostProcess.packageRoot.appendingPathComponent("lua/porting-tests")

    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("porting-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func script(_ text: String, named name: String = "script.lua") throws -> URL {
        let url = try temporaryDirectory().appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    // MARK: Time

    /// The example project's scenario: heartbeats at the broker, the broker link dropped,
    /// the script's own reconnect, heartbeats again — under virtual time, with a report.
    func testTheExampleProjectsScenario() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let reportURL = try temporaryDirectory().appendingPathComponent("report.json")
        let result = try HostProcess.run(
            ["--virtual-time", "--report", reportURL.path, "--remap", "broker.local=127.0.0.1:\(broker.port)",
             "--scenario", Self.examples.appendingPathComponent("telemetry_scenario.lua").path,
             Self.examples.appendingPathComponent("telemetry.lua").path],
            timeout: 30)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertEqual(result.stdout, "connected\noffline\nconnected\n")
        XCTAssertTrue(result.stderr.contains("telemetry scenario passed"), result.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: reportURL)) as! [String: Any]
        let mqtt = report["mqtt"] as! [String: Any]
        XCTAssertEqual(mqtt["connects"] as? Int, 2)
        XCTAssertEqual(mqtt["disconnects"] as? Int, 1)
    }

    /// 24 hours of 10-minute QoS 1 heartbeats in seconds of wall time, every one at the broker.
    func testADayOfHeartbeatsUnderVirtualTime() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let subscriber = try ClientHarness()
        try subscriber.connect(port: broker.port, options: .init(clientID: Array("counter".utf8), keepAlive: 60))
        try subscriber.waitFor { if case .connected = $0 { return true } else { return false } }
        try subscriber.run { try $0.subscribe([.init(topicFilter: Array("demo/#".utf8), qos: 1)]) }
        try subscriber.waitFor { if case .subscribed = $0 { return true } else { return false } }

        let reportURL = try temporaryDirectory().appendingPathComponent("report.json")
        let result = try HostProcess.run(
            ["--virtual-time", "--report", reportURL.path, "--remap", "broker.local=127.0.0.1:\(broker.port)",
             Self.examples.appendingPathComponent("telemetry.lua").path],
            timeout: 30)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertLessThan(result.seconds, 5, "24 h of device time took \(result.seconds) s")
        XCTAssertTrue(result.stdout.contains("done: 144 heartbeats after 86400 s"), result.stdout)
        let messages = try subscriber.waitForCount(144, timeout: 10) {
            if case .message = $0 { return true } else { return false }
        }
        XCTAssertEqual(messages.count, 144)

        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: reportURL)) as! [String: Any]
        let mqtt = report["mqtt"] as! [String: Any]
        XCTAssertEqual(mqtt["published_total"] as? Int, 144)
        XCTAssertEqual(mqtt["connects"] as? Int, 1)
        XCTAssertEqual(mqtt["reconnects"] as? Int, 0)
        let topics = mqtt["published"] as! [String: [String: Int]]
        XCTAssertEqual(topics["demo/heartbeat"]?["messages"], 144)
        XCTAssertEqual(report["timers_fired"] as? Int, 144)
        XCTAssertGreaterThanOrEqual(report["device_seconds"] as? Double ?? 0, 86_400)
        XCTAssertEqual(report["exit_status"] as? Int, 0)
        XCTAssertEqual((report["errors"] as? [String])?.count, 0)
    }

    func testSpeedRunsTimersFasterWithTheSameDeviceTime() throws {
        let url = try script("""
            tmr.create():alarm(4000, tmr.ALARM_SINGLE, function() print("time " .. tmr.time()) end)
            """)
        let result = try HostProcess.run(["--speed", "20", url.path], timeout: 10)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "time 4\n")
        XCTAssertLessThan(result.seconds, 2)
    }

    func testRunForCountsDeviceTimeUnderVirtualTime() throws {
        let url = try script("""
            local n = 0
            tmr.create():alarm(60000, tmr.ALARM_AUTO, function() n = n + 1; print(n, tmr.time()) end)
            """)
        let result = try HostProcess.run(["--virtual-time", "--run-for", "300", url.path], timeout: 10)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout.split(separator: "\n").count, 5, result.stdout)
        XCTAssertTrue(result.stdout.hasSuffix("5\t300\n"), result.stdout)
    }

    /// The same script prints the same device times in real time, at --speed and under
    /// --virtual-time.
    func testDeviceTimeIsTheSameAtAnySpeed() throws {
        let url = try script("""
            local n, t = 0, tmr.create()
            t:alarm(500, tmr.ALARM_AUTO, function()
              n = n + 1
              print(n, tmr.time(), math.floor(tmr.now() / 250000))
              if n == 4 then t:unregister() end
            end)
            """)
        let expected = "1\t0\t2\n2\t1\t4\n3\t1\t6\n4\t2\t8\n"
        for mode in [[], ["--speed", "4"], ["--virtual-time"]] {
            let result = try HostProcess.run(mode + [url.path], timeout: 10)
            XCTAssertEqual(result.status, 0, "\(mode): \(result.stderr)")
            XCTAssertEqual(result.stdout, expected, "\(mode)")
        }
    }

    func testDelayMovesVirtualTime() throws {
        let url = try script("local a = tmr.now() tmr.delay(1500) print(tmr.now() - a)\n")
        let result = try HostProcess.run(["--virtual-time", url.path], timeout: 10)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "1500\n")
    }

    /// Received messages per topic in the report; a retained command makes the script quit.
    func testReportCountsReceivedMessages() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        try broker.mosquittoPub(["-t", "cmd/quit", "-m", "now", "-r", "-q", "1"])
        let url = try script("""
            m = mqtt.Client("receiver", 60)
            m:on("message", function(c, topic, data) print(topic, data) c:close() end)
            m:connect("broker.local", 1883, 0, 0, function(c) c:subscribe("cmd/#", 1) end)
            """)
        let reportURL = try temporaryDirectory().appendingPathComponent("r.json")
        let result = try HostProcess.run(
            ["--virtual-time", "--report", reportURL.path, "--remap", "broker.local=127.0.0.1:\(broker.port)", url.path],
            timeout: 10)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "cmd/quit\tnow\n")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: reportURL)) as! [String: Any]
        let mqtt = report["mqtt"] as! [String: Any]
        XCTAssertEqual((mqtt["received"] as? [String: [String: Int]])?["cmd/quit"], ["messages": 1, "bytes": 3])
        XCTAssertEqual(mqtt["received_total"] as? Int, 1)
        XCTAssertEqual(mqtt["connects"] as? Int, 1)
    }

    // MARK: Heap

    func testDeviceDefaultHeap() throws {
        let url = try script("print(node.heap() <= 44 * 1024, node.heap() > 40 * 1024)\n")
        let result = try HostProcess.run(["--device", "esp8266", url.path], timeout: 10)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "true\ttrue\n")
        XCTAssertTrue(result.stderr.contains("of 45056 bytes"), result.stderr)
    }

    static let bigTable = """
        local before = node.heap()
        local t = {}
        for i = 1, 60 * 1024 / 16 do t[i] = i end
        print("built", #t, before > node.heap())
        """

    func testA60KTableFailsUnderA40KHeapAsOnTheDevice() throws {
        let url = try script(Self.bigTable)
        let limited = try HostProcess.run(["--heap", "40k", url.path], timeout: 10)
        XCTAssertEqual(limited.status, 1)
        XCTAssertTrue(limited.stdout.contains("not enough memory"), limited.stdout)
        XCTAssertFalse(limited.stdout.contains("built"))
        XCTAssertTrue(limited.stderr.contains("heap: peak"), limited.stderr)

        let unlimited = try HostProcess.run([url.path], timeout: 10)
        XCTAssertEqual(unlimited.status, 0, unlimited.stderr)
        XCTAssertEqual(unlimited.stdout, "built\t3840\tfalse\n")

        let roomy = try HostProcess.run(["--heap", "1M", url.path], timeout: 10)
        XCTAssertEqual(roomy.status, 0, roomy.stderr)
        XCTAssertEqual(roomy.stdout, "built\t3840\ttrue\n")
    }

    /// The device's MQTT queue lives in its heap: under --heap a burst of QoS 1 publishes is
    /// refused once the queue does not fit (publish returns false), and the heap comes back
    /// as the broker acknowledges; without --heap every publish is queued.
    func testTheMQTTQueueCountsAgainstTheHeap() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let script = Self.fixtures.appendingPathComponent("heap_mqtt_queue.lua").path
        let remap = "broker.local=127.0.0.1:\(broker.port)"
        let limited = try HostProcess.run(["--heap", "40k", "--remap", remap, script], timeout: 20)
        XCTAssertEqual(limited.status, 0, limited.stdout + limited.stderr)
        XCTAssertEqual(limited.stdout, "some refused\ttrue\nheap used by the queue\ttrue\nqueue drained\n")

        let unlimited = try HostProcess.run(["--remap", remap, script], timeout: 20)
        XCTAssertEqual(unlimited.status, 0, unlimited.stdout + unlimited.stderr)
        XCTAssertEqual(unlimited.stdout, "some refused\tfalse\nheap used by the queue\tfalse\nqueue drained\n")
    }

    func testGarbageIsCollectedBeforeTheHeapRunsOut() throws {
        let url = try script("""
            for round = 1, 200 do
              local t = {}
              for i = 1, 500 do t[i] = i end
            end
            print("free", node.heap() > 0)
            """)
        let result = try HostProcess.run(["--heap", "30k", url.path], timeout: 10)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertEqual(result.stdout, "free\ttrue\n")
    }

    // MARK: Strict

    func testStrictReportsWhatTheDeviceCannotRun() throws {
        let url = try script("""
            local half = 7 // 2
            print(os.time() > 0)
            print(math.type(1))
            print(10 / 2)
            """, named: "port.lua")
        let result = try HostProcess.run(["--strict", url.path], timeout: 10)
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("port.lua:1:"), result.stderr)
        XCTAssertTrue(result.stderr.contains("port.lua:2: os.time is not available on the device"), result.stderr)
        XCTAssertTrue(result.stderr.contains("port.lua:3: math.type is Lua 5.3 only"), result.stderr)
        XCTAssertTrue(result.stderr.contains("port.lua:4: the float 5.0 prints as 5.0 here and 5 on the device"), result.stderr)

        let clean = try script("print('ok')\n")
        let passing = try HostProcess.run(["--strict", clean.path], timeout: 10)
        XCTAssertEqual(passing.status, 0, passing.stderr)
        XCTAssertEqual(passing.stdout, "ok\n")
    }

    func testStrictFlagsModulesOutsideTheDefaultBuild() throws {
        let url = try script("print(sjson.encode({1}))\n", named: "mods.lua")
        let result = try HostProcess.run(["--strict", url.path], timeout: 10)
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("mods.lua:1: module 'sjson' is not in the default 2.2 firmware build"), result.stderr)
    }

    // MARK: Test runner

    func testRunnerPassesAndProveAgrees() throws {
        let directory = try temporaryDirectory()
        let junit = directory.appendingPathComponent("junit.xml")
        let result = try HostProcess.run(
            ["test", "--tap", "--virtual-time", "-j", "2", "--junit", junit.path,
             Self.fixtures.appendingPathComponent("passing").path], timeout: 30)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.hasPrefix("TAP version 13\n1..3\n"), result.stdout)
        XCTAssertTrue(result.stdout.contains("ok 1 - "), result.stdout)
        XCTAssertTrue(result.stdout.contains("NTest_math.lua: adds"), result.stdout)
        let xml = try String(contentsOf: junit, encoding: .utf8)
        XCTAssertTrue(xml.contains("<testcase classname="), xml)
        XCTAssertTrue(xml.contains("name=\"timer\""), xml)
        XCTAssertEqual(try prove(tap: result.stdout, in: directory), 0)
    }

    func testRunnerFailsAndProveAgrees() throws {
        let directory = try temporaryDirectory()
        let result = try HostProcess.run(
            ["test", "--tap", Self.fixtures.appendingPathComponent("failing").path], timeout: 30)
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("not ok 2 - "), result.stdout)
        XCTAssertTrue(result.stdout.contains("NTest_mixed.lua: fails"), result.stdout)
        XCTAssertTrue(result.stdout.contains("one is two"), result.stdout)
        XCTAssertTrue(result.stdout.contains("broken callback"), result.stdout)
        XCTAssertNotEqual(try prove(tap: result.stdout, in: directory), 0)

        let human = try HostProcess.run(["test", Self.fixtures.appendingPathComponent("failing").path], timeout: 30)
        XCTAssertEqual(human.status, 1)
        XCTAssertTrue(human.stderr.contains("3 files, 1 passed, 2 failed; 3 test cases, 2 failed"), human.stderr)
    }

    func testRunnerRunsTheExampleProject() throws {
        let result = try HostProcess.run(["test", Self.examples.path], timeout: 30)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("PASS "), result.stderr)
    }

    /// Runs `prove` on the TAP text; returns its exit status.
    private func prove(tap: String, in directory: URL) throws -> Int32 {
        let file = directory.appendingPathComponent("results.tap")
        try tap.write(to: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/prove")
        process.arguments = ["-e", "cat", file.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
