import Foundation
import TestSupport
import XCTest

/// Fleet mode (`--devices`, `--devices-from`, `--ramp`) through the real binary: every
/// device's CONNECT at a test-started mosquitto with its own client id, slices, per-device
/// flash folders and the `[index]` console prefix.
final class FleetTests: XCTestCase {
    /// Base chip id HostProcess sets (`NODEMCU_CHIPID`).
    static let base = 0xABCDEF

    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("nodemcu-fleet-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    private func script(_ name: String, _ text: String) throws -> URL {
        let url = folder.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }

    /// Each device connects with its default client id (`NodeMCU_<hex chip id>`), publishes
    /// one QoS 1 message and closes; the fleet ends when all are idle.
    private static let publisher = """
        local m = mqtt.Client()
        m:connect("broker.local", 1883, function(c)
          c:publish("fleet/" .. node.chipid(), "hello", 1, 0, function(c)
            print("published " .. node.chipid())
            c:close()
          end)
        end, function(c, reason) print("could not connect: " .. reason) end)
        """

    /// The 50-device smoke (.ci/run runs it as part of the suite): every device's CONNECT
    /// arrives at the broker with its own client id, every device prints its line with
    /// its prefix, and the process ends on its own with status 0.
    func testFiftyDevicesConnectWithTheirOwnClientIDs() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let url = try script("publisher.lua", Self.publisher)
        let result = try HostProcess.run(
            ["--devices", "50", "--remap", "broker.local=127.0.0.1:\(broker.port)", url.path], timeout: 60)
        XCTAssertFalse(result.timedOut, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        XCTAssertEqual(result.status, 0, "stderr: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("fleet: 50 devices (0-49), 50 ended with status 0, 0 failed"), result.stderr)
        let log = broker.log()
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 50, result.stdout)
        for index in 0..<50 {
            let chip = Self.base + index
            XCTAssertTrue(log.contains(" as NodeMCU_\(String(chip, radix: 16)) "), "device \(index): no CONNECT as NodeMCU_\(String(chip, radix: 16))\n\(log)")
            XCTAssertTrue(lines.contains("[\(index)] published \(chip)"), "device \(index)\n\(result.stdout)")
        }
    }

    /// `--report` in fleet mode: the slice's totals, then each device's own report with its
    /// index and chip id; a device that failed is counted and its error is in its entry.
    func testReportAggregatesTheFleetWithPerDeviceDetail() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let url = try script("publisher.lua", Self.publisher + """

            if node.chipid() == \(Self.base + 6) then error("device six fails") end
            """)
        let reportURL = folder.appendingPathComponent("fleet.json")
        let result = try HostProcess.run(
            ["--devices", "10", "--devices-from", "4-7", "--on-error", "exit", "--report", reportURL.path,
             "--remap", "broker.local=127.0.0.1:\(broker.port)", url.path], timeout: 60)
        XCTAssertFalse(result.timedOut, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        XCTAssertEqual(result.status, 1, "stderr: \(result.stderr)")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: reportURL)) as? [String: Any])
        let fleet = try XCTUnwrap(json["fleet"] as? [String: Int])
        XCTAssertEqual(fleet, ["devices": 4, "first": 4, "last": 7, "ended_ok": 3, "failed": 1])
        let totals = try XCTUnwrap(json["totals"] as? [String: Int])
        XCTAssertEqual(totals["connects"], 3)
        XCTAssertEqual(totals["published_total"], 3)
        XCTAssertEqual(totals["errors"], 1)
        let devices = try XCTUnwrap(json["devices"] as? [[String: Any]])
        XCTAssertEqual(devices.map { $0["index"] as? Int }, [4, 5, 6, 7])
        XCTAssertEqual(devices.map { $0["chip_id"] as? Int }, (4...7).map { Self.base + $0 })
        let failed = devices[2]
        XCTAssertEqual(failed["exit_status"] as? Int, 1)
        XCTAssertEqual((failed["errors"] as? [String])?.count, 1)
        XCTAssertTrue(((failed["errors"] as? [String])?.first ?? "").contains("device six fails"), "\(failed)")
        let mqtt = try XCTUnwrap(devices[0]["mqtt"] as? [String: Any])
        XCTAssertEqual(mqtt["published"] as? [String: [String: Int]], ["fleet/\(Self.base + 4)": ["bytes": 5, "messages": 1]])
    }

    /// A scenario drives one device: refused in fleet mode rather than ignored.
    func testScenarioIsRefusedInFleetMode() throws {
        let url = try script("idle.lua", "print('never')")
        let scenario = try script("s.lua", "")
        let result = try HostProcess.run(["--devices", "2", "--scenario", scenario.path, url.path], timeout: 30)
        XCTAssertEqual(result.status, 2, "stderr: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("--scenario drives one device; it cannot be used in fleet mode."), result.stderr)
        XCTAssertFalse(result.stdout.contains("never"))
    }

    /// `--devices-from A-B` runs only that slice, with the slice's indices and chip ids;
    /// `--ramp` spreads the starts; failures are reported per device and in the status.
    func testSliceRampAndPerDeviceStatus() throws {
        let url = try script("slice.lua", """
            print("chip " .. node.chipid())
            if node.chipid() % 2 == 1 then os.exit(3) end
            tmr.create():alarm(10, tmr.ALARM_SINGLE, function() print("done") end)
            """)
        let result = try HostProcess.run(["--devices", "100", "--devices-from", "10-13", "--ramp", "200", url.path], timeout: 30)
        XCTAssertFalse(result.timedOut)
        XCTAssertEqual(result.status, 1, "stderr: \(result.stderr)")
        let lines = Set(result.stdout.split(separator: "\n").map(String.init))
        var expected: Set<String> = []
        var failed: [Int] = []
        for index in 10...13 {
            let chip = Self.base + index
            expected.insert("[\(index)] chip \(chip)")
            if chip % 2 == 1 { failed.append(index) } else { expected.insert("[\(index)] done") }
        }
        XCTAssertEqual(lines, expected)
        for index in failed {
            XCTAssertTrue(result.stderr.contains("[\(index)] device \(index) (chip id 0x\(String(Self.base + index, radix: 16))) ended with status 3"), result.stderr)
        }
        XCTAssertTrue(result.stderr.contains("fleet: 4 devices (10-13), 2 ended with status 0, 2 failed"), result.stderr)

        // Host lines about one device carry its prefix: a load error, a quirk warning.
        let broken = try script("broken.lua", "print(")
        let loadError = try HostProcess.run(["--devices", "2", broken.path], timeout: 30)
        XCTAssertEqual(loadError.status, 1)
        XCTAssertTrue(loadError.stderr.contains("nodemcu-host: [1] broken.lua:1:"), loadError.stderr)
        let quirk = try script("quirk.lua", "mqtt.Client(\"id\", 60):connect(\"127.0.0.1\", 1, false, function() end, function() end, function() end)")
        let warned = try HostProcess.run(["--devices-from", "7-7", "--run-for", "0", quirk.path], timeout: 30)
        XCTAssertTrue(warned.stderr.contains("nodemcu-host: [7] warning: quirk.lua:1: m:connect"), warned.stderr)

        // So do the modules' --trace lines.
        let traced = try script("traced.lua", "tmr.create():alarm(1, tmr.ALARM_SINGLE, function() end)")
        let trace = try HostProcess.run(["--devices-from", "7-8", "--trace", traced.path], timeout: 30)
        XCTAssertTrue(trace.stderr.contains("nodemcu-host: [7] trace: tmr timer fired"), trace.stderr)
        XCTAssertTrue(trace.stderr.contains("nodemcu-host: [8] trace: tmr timer fired"), trace.stderr)

        let bad = try HostProcess.run(["--devices", "10", "--devices-from", "5-10", url.path], timeout: 30)
        XCTAssertEqual(bad.status, 2, bad.stderr)
        let noScript = try HostProcess.run(["--devices", "3"], timeout: 30)
        XCTAssertEqual(noScript.status, 2, noScript.stderr)
        XCTAssertTrue(noScript.stderr.contains("needs a script file"), noScript.stderr)
    }

    /// Copy-on-write flash: device 3 writes a file into `devices/3/`, device 4 does not
    /// see it; both read the shared folder's file; a device's change to a shared file
    /// stays in its own folder.
    func testPerDeviceFileIsolation() throws {
        try Data("from the shared folder".utf8).write(to: folder.appendingPathComponent("shared.txt"))
        let url = try script("files.lua", """
            local me = node.chipid() - \(Self.base)
            if me == 3 then
              file.open("mine.txt", "w"); file.write("device 3"); file.close()
              file.open("shared.txt", "a"); file.write(" + 3"); file.close()
            end
            -- Isolation holds whatever the order the two devices run in.
            local f = file.open("shared.txt", "r")
            print("shared: " .. f:read())
            f:close()
            print("mine: " .. tostring(file.exists("mine.txt")))
            local names = {}
            for name in pairs(file.list()) do names[#names + 1] = name end
            table.sort(names)
            print("list: " .. table.concat(names, ","))
            """)
        let result = try HostProcess.run(["--devices-from", "3-4", url.path], timeout: 30)
        XCTAssertEqual(result.status, 0, "stderr: \(result.stderr)")
        let lines = Set(result.stdout.split(separator: "\n").map(String.init))
        XCTAssertEqual(lines, [
            "[3] shared: from the shared folder + 3", "[3] mine: true", "[3] list: files.lua,mine.txt,shared.txt",
            "[4] shared: from the shared folder", "[4] mine: false", "[4] list: files.lua,shared.txt",
        ])
        // On disk: the writes went to devices/3/ only; the shared file is unchanged.
        XCTAssertEqual(try String(contentsOf: folder.appendingPathComponent("shared.txt"), encoding: .utf8), "from the shared folder")
        XCTAssertEqual(try String(contentsOf: folder.appendingPathComponent("devices/3/mine.txt"), encoding: .utf8), "device 3")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("devices/4").path), [])
    }

    /// The chunk loaders see the device's flash as `file` does: a file a device wrote is
    /// what its `dofile` and `require` run (the other device gets the shared copy or
    /// nothing), and `node.compile` writes the `.lc` into the device's folder.
    func testLoadersReadTheDevicesOwnFilesFirst() throws {
        try Data("return 'shared'".utf8).write(to: folder.appendingPathComponent("mod.lua"))
        let url = try script("loaders.lua", """
            local me = node.chipid() - \(Self.base)
            if me == 5 then
              file.open("mod.lua", "w"); file.write("return 'own 5'"); file.close()
              file.open("app.lua", "w"); file.write("return 'app 5'"); file.close()
              print("compile", node.compile("app.lua"))
            end
            print("dofile", dofile("mod.lua"))
            print("require", require("mod"))
            print("lc", pcall(dofile, "app.lc"))
            """)
        let result = try HostProcess.run(["--devices-from", "5-6", url.path], timeout: 30)
        XCTAssertEqual(result.status, 0, "stderr: \(result.stderr)")
        let lines = Set(result.stdout.split(separator: "\n").map(String.init))
        XCTAssertEqual(lines, [
            "[5] compile", "[5] dofile\town 5", "[5] require\town 5", "[5] lc\ttrue\tapp 5",
            "[6] dofile\tshared", "[6] require\tshared", "[6] lc\tfalse\tcannot open app.lc: No such file or directory",
        ])
        let shared = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        XCTAssertEqual(shared, ["devices", "loaders.lua", "mod.lua"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("devices/5").path).sorted(),
                       ["app.lc", "app.lua", "mod.lua"])
    }

    /// Console lines are whole and prefixed, also when a line is written in pieces
    /// (`uart.write` without a newline, then the rest) by many devices at once.
    func testConsoleLinesArePrefixedAndWhole() throws {
        let url = try script("pieces.lua", """
            for i = 1, 20 do
              uart.write(0, "line ", tostring(i))
              uart.write(0, " of device ", tostring(node.chipid() - \(Self.base)), "\\n")
            end
            uart.write(0, "unfinished")
            """)
        let result = try HostProcess.run(["--devices", "8", url.path], timeout: 30)
        XCTAssertEqual(result.status, 0, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines.last, "")
        var expected: [String] = []
        for device in 0..<8 {
            for i in 1...20 { expected.append("[\(device)] line \(i) of device \(device)") }
            expected.append("[\(device)] unfinished")
        }
        XCTAssertEqual(lines.dropLast().sorted(), expected.sorted())
    }

    /// `--run-for` ends a fleet whose devices never go idle, also the devices the ramp has
    /// not started yet (status 0 for all).
    func testRunForEndsDevicesTheRampHasNotStarted() throws {
        let url = try script("forever.lua", """
            print("boot")
            tmr.create():alarm(1000, tmr.ALARM_AUTO, function() end)
            """)
        // --ramp 0.5: device 0 at 0 s, device 1 at 2 s, device 2 at 4 s; --run-for 1 ends all.
        let result = try HostProcess.run(["--devices", "3", "--ramp", "0.5", "--run-for", "1", url.path], timeout: 30)
        XCTAssertFalse(result.timedOut)
        XCTAssertEqual(result.status, 0, "stderr: \(result.stderr)")
        XCTAssertEqual(result.stdout, "[0] boot\n")
        XCTAssertTrue(result.stderr.contains("fleet: 3 devices (0-2), 3 ended with status 0, 0 failed"), result.stderr)
    }

    /// A device's errors and restarts (`--on-error restart`) are its own: device 1 reboots
    /// until it gives up and fails; device 0 boots once and ends normally.
    func testRestartsArePerDevice() throws {
        let url = try script("flaky.lua", """
            print("boot")
            tmr.create():alarm(1, tmr.ALARM_SINGLE, function()
              if node.chipid() == \(Self.base + 1) then error("device 1 fails") end
            end)
            """)
        let result = try HostProcess.run(["--devices", "2", "--on-error", "restart", url.path], timeout: 30)
        XCTAssertFalse(result.timedOut)
        XCTAssertEqual(result.status, 1, "stderr: \(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { $0 == "[0] boot" }.count, 1, result.stdout)
        XCTAssertEqual(lines.filter { $0 == "[1] boot" }.count, 6, result.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("[1] PANIC: unprotected error in call to Lua API (") }, result.stdout)
        XCTAssertTrue(result.stderr.contains("nodemcu-host: [1] restarting (a Lua error)"), result.stderr)
        XCTAssertTrue(result.stderr.contains("nodemcu-host: [1] giving up after 5 restarts"), result.stderr)
        XCTAssertTrue(result.stderr.contains("[1] device 1 (chip id 0x\(String(Self.base + 1, radix: 16))) ended with status 1"), result.stderr)
        XCTAssertTrue(result.stderr.contains("fleet: 2 devices (0-1), 1 ended with status 0, 1 failed"), result.stderr)
        XCTAssertFalse(result.stderr.contains("[0] restarting"), result.stderr)
    }

    /// A fleet's Lua heaps come from mimalloc (loaded for them, `LuaVM(compactHeap:)`);
    /// one device keeps malloc alone, as do sanitizer builds (they must see every block).
    func testFleetDevicesTakeTheirLuaBlocksFromMimalloc() throws {
        let url = try script("maps.lua", """
            local f = io.open("/proc/self/maps")
            print(f:read("a"):find("libmimalloc", 1, true) ~= nil)
            f:close()
            """)
        let expected = ProcessInfo.processInfo.environment["NODEMCU_SANITIZER"] == nil ? "true" : "false"
        let fleet = try HostProcess.run(["--devices", "2", url.path], timeout: 30)
        XCTAssertEqual(fleet.status, 0, fleet.stderr)
        XCTAssertEqual(Set(fleet.stdout.split(separator: "\n").map(String.init)), ["[0] \(expected)", "[1] \(expected)"])
        XCTAssertFalse(fleet.stderr.contains("libmimalloc.so.2 not found"), fleet.stderr)
        let single = try HostProcess.run([url.path], timeout: 30)
        XCTAssertEqual(single.stdout, "false\n", single.stderr)
    }

    /// `--modules` installs only the listed firmware modules (as a firmware build does),
    /// in every device; an unknown name is bad usage.
    func testModulesListsTheFirmwareBuild() throws {
        let url = try script("modules.lua", "print(mqtt ~= nil, tmr ~= nil, file == nil, net == nil)")
        let result = try HostProcess.run(["--devices", "2", "--modules", "tmr,node,mqtt", url.path], timeout: 30)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(Set(result.stdout.split(separator: "\n").map(String.init)),
                       ["[0] true\ttrue\ttrue\ttrue", "[1] true\ttrue\ttrue\ttrue"])
        let single = try HostProcess.run(["--firmware", "3.0", "--modules", "tmr,node", "-e", "print(node.info('build_config').modules, mqtt)"], timeout: 30)
        XCTAssertEqual(single.stdout, "node,tmr\tnil\n", single.stderr)
        let bad = try HostProcess.run(["--modules", "tmr,ws2812", "-e", ""], timeout: 30)
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--modules: no module 'ws2812'"), bad.stderr)
    }
}
