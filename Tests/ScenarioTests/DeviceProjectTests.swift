import Foundation
import MQTT
import MQTTCore
import NIOCore
import TestSupport
import XCTest

/// The multi-file device projects under examples/projects/, each run unchanged through
/// the real binary (only `--remap` for the hard-coded broker 192.168.1.10, the telnet
/// port and `--board` for sensor values), checked by what reaches a test-started
/// mosquitto and, for the console, by an outside TCP client.
///
/// Each project is copied into a fresh folder first: the script's folder is its flash
/// file system (`--fs` default), and the relay writes its state there.
final class DeviceProjectTests: XCTestCase {
    static let projects = HostProcess.packageRoot.appendingPathComponent("examples/projects")
    /// `HostProcess` sets NODEMCU_CHIPID=0xABCDEF.
    static let clientID = "ESP-\(0xABCDEF)"

    /// A fresh copy of a project; removed after the test.
    private func copyProject(_ name: String) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("project-\(name)-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Self.projects.appendingPathComponent(name), to: folder)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }

    /// An MQTT client on the broker, subscribed to `filter` before the device starts.
    private func watch(_ broker: Mosquitto, _ filter: String) throws -> ClientHarness {
        let watcher = try ClientHarness()
        try watcher.connect(port: broker.port, options: MQTTConnectOptions(clientID: Array("watcher".utf8), keepAlive: 60))
        try watcher.waitFor(timeout: 10, "CONNACK") { if case .connected = $0 { return true } else { return false } }
        let id = try watcher.run { try $0.subscribe([.init(topicFilter: Array(filter.utf8), qos: 1)]) }
        try watcher.waitFor(timeout: 10, "SUBACK") { $0 == .subscribed(packetID: id, returnCodes: [1]) }
        return watcher
    }

    /// The next message on `topic` whose payload passes `accept`.
    private func message(
        _ watcher: ClientHarness, _ topic: String, timeout: TimeInterval = 15, _ accept: (String) -> Bool = { _ in true }
    ) throws -> String {
        let event = try watcher.waitFor(timeout: timeout, "a message on \(topic)") { event in
            guard case .message(let m) = event, String(buffer: m.topic) == topic else { return false }
            return accept(String(buffer: m.payload))
        }
        guard case .message(let m) = event else { return "" }
        return String(buffer: m.payload)
    }

    private func json(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    private func publish(_ watcher: ClientHarness, _ topic: String, _ payload: String) throws {
        try watcher.run { _ = try $0.publish(topic: Array(topic.utf8), payload: Array(payload.utf8), qos: 1, retain: false) }
    }

    // MARK: dht_mqtt

    /// init.lua polls `wifi.sta.status() == 5`, app.lua reads config.json, syncs the
    /// time with sntp and publishes a DHT22 reading as JSON every 10 s under the client
    /// id "ESP-<chipid>", with a retained status and a will.
    func testDHTSensorPublishesJSONReadingsEveryTenSeconds() throws {
        let folder = try copyProject("dht_mqtt")
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let watcher = try watch(broker, "home/livingroom/climate/#")
        let device = try HostProcess.launch([
            "--remap", "192.168.1.10=127.0.0.1:\(broker.port)",
            "--board", folder.appendingPathComponent("board.txt").path,
            folder.appendingPathComponent("init.lua").path,
        ])
        defer { device.stop() }

        XCTAssertEqual(try message(watcher, "home/livingroom/climate/status"), "online", broker.log())
        let first = try json(try message(watcher, "home/livingroom/climate"))
        XCTAssertEqual(first["id"] as? String, Self.clientID)
        XCTAssertEqual(first["seq"] as? Int, 1)
        XCTAssertEqual(first["temperature"] as? Double, 21.5)
        XCTAssertEqual(first["humidity"] as? Double, 48.3)
        XCTAssertEqual(first["rssi"] as? Int, -58)
        XCTAssertNotNil(first["heap"] as? Int)
        XCTAssertNil(first["error"])
        // rtctime after sntp.sync: the host clock.
        let time = try XCTUnwrap(first["time"] as? Int, "no timestamp: \(first)")
        XCTAssertLessThan(abs(Double(time) - Date().timeIntervalSince1970), 30)
        let formatter = ISO8601DateFormatter()
        XCTAssertEqual((first["iso"] as? String).flatMap(formatter.date(from:))?.timeIntervalSince1970, Double(time))

        let second = try json(try message(watcher, "home/livingroom/climate", timeout: 20))
        XCTAssertEqual(second["seq"] as? Int, 2)
        let interval = try XCTUnwrap(second["time"] as? Int) - time
        XCTAssertTrue((9...11).contains(interval), "readings \(interval) s apart, not 10")

        XCTAssertTrue(device.stdoutSoFar.contains("connected to 192.168.1.10 as \(Self.clientID)"), device.stdoutSoFar)
        // Power off: no DISCONNECT, so the broker publishes the will.
        device.stop()
        XCTAssertEqual(try message(watcher, "home/livingroom/climate/status"), "offline")
    }

    /// Without a sensor on the pin the same project reports the timeout in its JSON.
    func testDHTSensorWithoutASensorReportsTheTimeout() throws {
        let folder = try copyProject("dht_mqtt")
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let watcher = try watch(broker, "home/livingroom/climate")
        let device = try HostProcess.launch([
            "--firmware", "3.0", "--remap", "192.168.1.10=127.0.0.1:\(broker.port)", folder.appendingPathComponent("init.lua").path,
        ])
        defer { device.stop() }
        let reading = try json(try message(watcher, "home/livingroom/climate"))
        XCTAssertEqual(reading["error"] as? String, "timeout", "\(reading)")
        XCTAssertNil(reading["temperature"])
        XCTAssertEqual(reading["id"] as? String, Self.clientID)
    }

    // MARK: relay_mqtt

    /// init.lua restores the relay from its file and waits for `STA_GOT_IP`; app.lua
    /// switches it on MQTT commands, saves the state and reports it retained; RESTART
    /// reboots (node.restart) and the state comes back; so does a power cycle (a new
    /// process on the same flash folder).
    func testRelayFollowsCommandsAndKeepsItsStateAcrossRestarts() throws {
        let folder = try copyProject("relay_mqtt")
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let base = "home/relay/\(Self.clientID)"
        let watcher = try watch(broker, "home/relay/#")
        let arguments = [
            "--firmware", "3.0", "--remap", "192.168.1.10=127.0.0.1:\(broker.port)",
            folder.appendingPathComponent("init.lua").path,
        ]
        var device = try HostProcess.launch(arguments)
        defer { device.stop() }
        let stateFile = folder.appendingPathComponent("relay.state")

        var state = try json(try message(watcher, base + "/state"))
        XCTAssertEqual(state["state"] as? String, "OFF", broker.log())
        XCTAssertEqual(state["level"] as? Int, 0)
        XCTAssertEqual(state["boot"] as? Int, 0, "power-on")

        try publish(watcher, base + "/set", "on")
        state = try json(try message(watcher, base + "/state"))
        XCTAssertEqual(state["state"] as? String, "ON")
        XCTAssertEqual(state["level"] as? Int, 1, "gpio.read of the relay pin")
        XCTAssertEqual(try String(contentsOf: stateFile, encoding: .utf8), "ON")

        try publish(watcher, base + "/set", "RESTART")
        state = try json(try message(watcher, base + "/state"))
        XCTAssertEqual(state["boot"] as? Int, 4, "a software restart: \(state)")
        XCTAssertEqual(state["state"] as? String, "ON", "restored from relay.state after node.restart()")
        XCTAssertEqual(state["level"] as? Int, 1)
        XCTAssertTrue(device.stdoutSoFar.contains("relay_mqtt booting, chip \(0xABCDEF), relay ON"), device.stdoutSoFar)

        try publish(watcher, base + "/set", "TOGGLE")
        state = try json(try message(watcher, base + "/state"))
        XCTAssertEqual(state["state"] as? String, "OFF")
        XCTAssertEqual(state["level"] as? Int, 0)
        XCTAssertEqual(try String(contentsOf: stateFile, encoding: .utf8), "OFF")
        try publish(watcher, base + "/set", "ON")
        XCTAssertEqual(try json(try message(watcher, base + "/state"))["state"] as? String, "ON")

        // Power cut: the process ends, the will says offline; a new one finds the file.
        device.stop()
        XCTAssertEqual(try message(watcher, base + "/status") { $0 == "offline" }, "offline")
        device = try HostProcess.launch(arguments)
        state = try json(try message(watcher, base + "/state"))
        XCTAssertEqual(state["boot"] as? Int, 0)
        XCTAssertEqual(state["state"] as? String, "ON")
        XCTAssertEqual(state["level"] as? Int, 1)
        XCTAssertFalse(
            FileManager.default.fileExists(atPath: Self.projects.appendingPathComponent("relay_mqtt/relay.state").path),
            "the state file lands in the flash folder only")
    }

    // MARK: telnet_console

    /// console.lua serves a Lua console on port 23 (node.output into the socket: 2.2
    /// strings, 3.0 the pipe; node.input from it); app.lua announces it over MQTT. An
    /// outside client types lines and reads the answers and prompts.
    func testTelnetConsoleAnswersAnOutsideClient() throws {
        for profile in ["2.2", "3.0"] {
            try runTelnetConsole(profile: profile)
        }
    }

    private func runTelnetConsole(profile: String) throws {
        let folder = try copyProject("telnet_console")
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let watcher = try watch(broker, "devices/#")
        let port = try Mosquitto.freePort()
        let device = try HostProcess.launch([
            "--firmware", profile,
            "--remap", "192.168.1.10=127.0.0.1:\(broker.port)", "--remap", "*:23=127.0.0.1:\(port)",
            folder.appendingPathComponent("init.lua").path,
        ])
        defer { device.stop() }
        let announced = try message(watcher, "devices/\(Self.clientID)/console")
        XCTAssertTrue(announced.hasSuffix(":23"), announced)
        XCTAssertTrue(device.stdoutSoFar.contains("console listening on port 23"))

        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = [
            "python3", NetModuleTests.peers.appendingPathComponent("console_client.py").path, String(port),
            #"print("sum", 1 + 2)"#, "=node.chipid()", "for i = 1, 2 do", "print(i) end", #"error("boom")"#,
            "x = = 1", #"print(file.exists("console.lua"))"#, #"print(("x"):rep(3000))"#,
        ]
        let output = Pipe()
        client.standardOutput = output
        try client.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        client.waitUntilExit()
        let version = profile == "2.2" ? "2.2.1" : "3.0.0"
        let errorPrefix = profile == "2.2" ? "" : "Lua error: "
        let answers = text.split(separator: "\n").map(String.init)
        XCTAssertEqual(answers, [
            "'NodeMCU \(version) console, chip \(0xABCDEF)\\n'",
            "'sum\\t3\\n> '",
            "'\(0xABCDEF)\\n> '",
            "'>> '",
            "'1\\n2\\n> '",
            #""\#(errorPrefix)stdin:1: boom\nstack traceback:\n\t[C]: in function 'error'\n\tstdin:1: in main chunk\n> ""#,
            #""\#(errorPrefix)stdin:1: unexpected symbol near '='\n> ""#,
            "'true\\n> '",
            "'" + String(repeating: "x", count: 3000) + "\\n> '",
        ], "firmware \(profile): \(text)")
        // The console's output went to the client only (node.output(fn, 0)); a typed error
        // does not end the device.
        XCTAssertFalse(device.stdoutSoFar.contains("sum"), device.stdoutSoFar)
        XCTAssertTrue(device.waitForOutput(containing: "console client left", timeout: 10), device.stdoutSoFar)
        XCTAssertTrue(Mosquitto.canConnect(port), "the console still listens")
    }
}

/// `for k in pairs(_G)` lists every module of the profile's default firmware build
/// (behaviour spec §5.6, more-modules §16) plus sjson, tls and http.
final class ModulePresenceTests: XCTestCase {
    static let defaultBuild = ["adc", "bit", "dht", "file", "gpio", "i2c", "mqtt", "net", "node", "ow", "spi", "tmr", "uart", "wifi"]

    func testGlobalsListEveryModuleOfTheDefaultBuild() throws {
        for profile in ["2.2", "3.0"] {
            let result = try HostProcess.run(["--firmware", profile, "-e", "for k in pairs(_G) do print(k) end"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let globals = Set(result.stdout.split(separator: "\n").map(String.init))
            let expected = Self.defaultBuild + ["sjson", "tls", "http"] + (profile == "3.0" ? ["pipe"] : [])
            for module in expected {
                XCTAssertTrue(globals.contains(module), "firmware \(profile): no global \(module) in \(globals.sorted())")
            }
            XCTAssertEqual(globals.contains("pipe"), profile == "3.0", "pipe is in every 3.0 image and in no 2.2 one")
            // Each is a module table, not a stray value.
            let types = try HostProcess.run([
                "--firmware", profile, "-e",
                "for _, m in ipairs({\(expected.map { "\"\($0)\"" }.joined(separator: ","))}) do print(m, type(_G[m])) end",
            ])
            XCTAssertEqual(types.stdout, expected.map { "\($0)\ttable\n" }.joined(), "firmware \(profile)")
        }
    }

    /// Modules are built on first use (`ModuleRegistry`): whatever touches a module first
    /// — a field read, an assignment, `pairs` — sees the whole module, and building it
    /// does not count to the script's heap (on the device the tables are in flash).
    func testModulesAreWholeOnFirstUseAndOutsideTheScriptHeap() throws {
        let script = """
            collectgarbage()
            collectgarbage("stop")
            local before = node.heap()
            local f = sjson.encode
            print(node.heap() == before, type(f))
            collectgarbage("restart")
            local names = {}
            for k in pairs(encoder) do names[#names + 1] = k end
            table.sort(names)
            print(table.concat(names, ","))
            bit.custom = 1
            print(bit.custom, type(bit.band), bit.bnot(0))
            local c = crypto
            print(type(c.hash), c == crypto)
            -- The standard libraries nothing at boot uses are built on first use too.
            local n = 0
            for _ in pairs(utf8) do n = n + 1 end
            print(n, coroutine.wrap(function() coroutine.yield(7) end)(), require("io") == io, type(io.write))
            """
        for profile in ["2.2", "3.0"] {
            let result = try HostProcess.run(["--firmware", profile, "--heap", "40000", "-e", script])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stdout, "true\tfunction\nfromBase64,fromHex,toBase64,toHex\n1\tfunction\t-1\nfunction\ttrue\n6\t7\ttrue\tfunction\n", "firmware \(profile)")
        }
    }
}
