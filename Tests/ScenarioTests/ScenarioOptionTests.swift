import Foundation
import TestSupport
import XCTest

/// `--scenario FILE.lua` through the real binary: board inputs, network faults against a
/// mosquitto the test starts on a free 127.0.0.1 port, the scenario's own MQTT client,
/// expectations and the exit status. Synchronisation is the scenario's own: every step
/// waits for what the device prints or publishes, with a deadline on the device clock.
final class ScenarioOptionTests: XCTestCase {
    var scratch: ScratchFolder!
    var folder: URL { scratch.url }

    override func setUpWithError() throws {
        scratch = try ScratchFolder(prefix: "scenario")
    }

    override func tearDownWithError() throws {
        scratch.remove()
    }

    func write(_ name: String, _ text: String) throws -> String {
        try scratch.write(name, text)
    }

    /// An MQTT device script with its own reconnect logic (keepalive 1 s): prints
    /// `connected N`, `subscribed`, `offline`, `failed REASON`, `message TOPIC PAYLOAD`,
    /// and echoes each message on cmd/# to echo/TOPIC.
    static let device = """
        local n = 0
        m = mqtt.Client("scenario-device", 1)
        local connect
        m:on("offline", function() print("offline"); tmr.create():alarm(200, tmr.ALARM_SINGLE, connect) end)
        m:on("message", function(c, t, d)
          print("message " .. t .. " " .. tostring(d))
          c:publish("echo/" .. t, d, 0, 0)
        end)
        function connect()
          m:connect("broker.local", 1883, function(c)
            n = n + 1
            print("connected " .. n)
            c:subscribe("cmd/#", 0, function() print("subscribed") end)
          end, function(c, reason)
            print("failed " .. reason)
            tmr.create():alarm(200, tmr.ALARM_SINGLE, connect)
          end)
        end
        connect()
        """

    /// Runs `scenario` with the MQTT device script (or `device`) against a fresh mosquitto.
    func runWithBroker(_ scenario: String, device: String = device, timeout: Double = 30) throws -> HostProcess.Result {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let script = try write("device.lua", device)
        let scenarioPath = try write("scenario.lua", scenario)
        return try HostProcess.run(
            ["--remap", "broker.local=127.0.0.1:\(broker.port)", "--scenario", scenarioPath, script], timeout: timeout)
    }

    func assertPassed(_ result: HostProcess.Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(result.timedOut, "timed out\n" + result.stdout + result.stderr, file: file, line: line)
        XCTAssertEqual(result.status, 0, "stdout:\n\(result.stdout)\nstderr:\n\(result.stderr)", file: file, line: line)
    }

    // MARK: The example project

    /// examples/scenario: a button press toggles the relay, the state reaches the broker,
    /// a command from the broker switches it, and a half-open broker link is noticed by
    /// the keepalive (2 s) and recovered by the script's reconnect logic.
    func testRelayExampleScenario() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let directory = HostProcess.packageRoot.appendingPathComponent("examples/scenario")
        for mode in [[], ["--virtual-time"]] {
            let result = try HostProcess.run(mode + [
                "--remap", "192.168.1.10=127.0.0.1:\(broker.port)",
                "--scenario", directory.appendingPathComponent("relay_scenario.lua").path,
                directory.appendingPathComponent("relay.lua").path,
            ], timeout: 30)
            assertPassed(result)
            XCTAssertEqual(result.stdout, "connected\nrelay ON\nrelay OFF\noffline\nconnected\nrelay ON\n", "\(mode)")
            XCTAssertTrue(result.stderr.contains("relay scenario passed"), result.stderr)
            if mode.isEmpty {
                // Offline came from the keepalive: two keepalive periods after the half-open.
                XCTAssertGreaterThan(result.seconds, 4)
            } else {
                // The first keepalive period is skipped; the wait for the PINGRESP that
                // never comes flows at real speed.
                XCTAssertGreaterThan(result.seconds, 2)
                XCTAssertLessThan(result.seconds, 4.5)
            }
        }
    }

    // MARK: Board inputs

    func testBoardInputsReachTheScript() throws {
        let script = try write("io.lua", """
            gpio.mode(3, gpio.INT)
            gpio.trig(3, "both", function(level) print("edge " .. level) end)
            uart.on("data", "\\n", function(d) print("uart " .. d:gsub("\\n", "")) end, 0)
            tmr.create():alarm(100, tmr.ALARM_AUTO, function()
              local status, temp, humi = dht.read(5)
              print("adc " .. adc.read(0) .. " dht " .. status .. " " .. tostring(temp) .. " " .. tostring(humi))
            end)
            """)
        let scenario = try write("io_scenario.lua", """
            at(150, function()
              adc(512)
              dht(5, 21.5, 40)
              uart("hello\\n")
              gpio(3, 1)
              expect_console("^edge 1$", 50)
              expect_console("^uart hello", 100)
              expect_console("^adc 512 dht 0 21.5 40.0$", 200, function()
                local lines = console_lines()
                expect(lines[1]:find("^adc 0 dht %-2"), "before: no sensor, ADC 0")
                done()
              end)
            end)
            """)
        let result = try HostProcess.run(["--scenario", scenario, script], input: "", timeout: 20)
        assertPassed(result)
        XCTAssertTrue(result.stdout.contains("edge 1\n"), result.stdout)
    }

    /// A scenario reacting to a gpio write with an edge does not run the device's
    /// `gpio.trig` callback inside the device's `gpio.write` call.
    func testReactionsNeverRunInsideTheDevicesCall() throws {
        let script = try write("react.lua", """
            gpio.mode(1, gpio.OUTPUT)
            gpio.mode(2, gpio.INT, gpio.PULLUP)
            gpio.trig(2, "down", function() print("trig") end)
            gpio.write(1, 1)
            print("after write")
            tmr.create():alarm(50, tmr.ALARM_SINGLE, function() end)
            """)
        let scenario = try write("react_scenario.lua", """
            on_gpio(1, function(level) gpio(2, 0) end)
            expect_console("^trig$", 100, function() done() end)
            """)
        let result = try HostProcess.run(["--scenario", scenario, script], timeout: 20)
        assertPassed(result)
        XCTAssertEqual(result.stdout, "after write\ntrig\n")
    }

    /// `nodemcu-host test` runs `x_test.lua` with `x_test.scenario.lua` when there is one
    /// (and does not take the scenario for a test); a failed scenario fails the file.
    func testTestRunnerRunsEachTestWithItsScenario() throws {
        let device = """
            gpio.mode(1, gpio.OUTPUT)
            gpio.mode(2, gpio.INT, gpio.PULLUP)
            gpio.trig(2, "down", function() gpio.write(1, 1) end)
            tmr.create():alarm(100, tmr.ALARM_AUTO, function() end)
            """
        _ = try write("button_test.lua", device)
        _ = try write("button_test.scenario.lua", "at(50, function() gpio(2, 0); expect_gpio(1, 1, 50, function() done() end) end)\n")
        _ = try write("silent_test.lua", device)
        _ = try write("silent_test.scenario.lua", "at(50, function() expect_gpio(1, 1, 50) end)\n")
        let result = try HostProcess.run(["test", folder.path], timeout: 30)
        let output = result.stdout + result.stderr
        XCTAssertEqual(result.status, 1, output)
        XCTAssertTrue(output.contains("PASS \(folder.path)/button_test.lua"), output)
        XCTAssertTrue(output.contains("FAIL \(folder.path)/silent_test.lua"), output)
        XCTAssertTrue(output.contains("expect_gpio(1, 1, within 50 ms) not met"), output)
        XCTAssertTrue(output.contains("2 files, 1 passed, 1 failed"), output)
    }

    // MARK: Failures

    func testFailedExpectationEndsWithStatus3AndNamesTimeAndExpectation() throws {
        let script = try write("idle.lua", "gpio.mode(1, gpio.OUTPUT)\ntmr.create():alarm(100, tmr.ALARM_AUTO, function() end)\n")
        let scenario = try write("fails.lua", "at(100, function() expect_gpio(1, 1, 250) end)\n")
        let result = try HostProcess.run(["--scenario", scenario, script], timeout: 20)
        XCTAssertEqual(result.status, 3, result.stderr)
        // Device time: 250 ms after the at(100) fired (timers may run a few ms late).
        XCTAssertTrue(result.stderr.contains("nodemcu-host: scenario failed at 0."), result.stderr)
        XCTAssertTrue(result.stderr.contains("expect_gpio(1, 1, within 250 ms) not met (waited from 0."), result.stderr)
        XCTAssertTrue(result.stderr.contains(" s); last seen: no write to gpio 1"), result.stderr)
    }

    func testExpectAndScenarioErrorsFailTheRun() throws {
        let script = try write("idle.lua", "tmr.create():alarm(100, tmr.ALARM_AUTO, function() end)\n")
        let expectFails = try write("expect.lua", "at(20, function() expect(1 == 2, \"one is two\") end)\n")
        var result = try HostProcess.run(["--scenario", expectFails, script], timeout: 20)
        XCTAssertEqual(result.status, 3)
        XCTAssertTrue(result.stderr.contains("scenario failed at 0."), result.stderr)
        XCTAssertTrue(result.stderr.contains("expect failed: one is two"), result.stderr)

        let broken = try write("broken.lua", "at(20, function() local x = nil; x.y = 1 end)\n")
        result = try HostProcess.run(["--scenario", broken, script], timeout: 20)
        XCTAssertEqual(result.status, 3)
        XCTAssertTrue(result.stderr.contains("scenario error at 0."), result.stderr)
        XCTAssertTrue(result.stderr.contains("broken.lua:1:"), result.stderr)

        let noBroker = try write("nobroker.lua", "on_publish(\"a/#\", function() end)\n")
        result = try HostProcess.run(["--scenario", noBroker, script], timeout: 20)
        XCTAssertEqual(result.status, 3)
        XCTAssertTrue(result.stderr.contains("on_publish needs the broker"), result.stderr)
    }

    func testRunForEndingWithAPendingExpectationFails() throws {
        let script = try write("idle.lua", "tmr.create():alarm(100, tmr.ALARM_AUTO, function() end)\n")
        let scenario = try write("pending.lua", "at(100, function() expect_gpio(1, 1, 5000) end)\n")
        var result = try HostProcess.run(["--run-for", "0.4", "--scenario", scenario, script], timeout: 20)
        XCTAssertEqual(result.status, 3, result.stderr)
        XCTAssertTrue(
            result.stderr.contains("expect_gpio(1, 1, within 5000 ms) still pending when the run ended (--run-for)"),
            result.stderr)
        // Nothing pending: --run-for ends it with 0 as usual.
        let quiet = try write("quiet.lua", "at(100, function() log('tick') end)\n")
        result = try HostProcess.run(["--run-for", "0.4", "--scenario", quiet, script], timeout: 20)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("nodemcu-host: scenario 0.") && result.stderr.contains(": tick"), result.stderr)
    }

    func testFailedPublishExpectationShowsWhatWasSeen() throws {
        let result = try runWithBroker("""
            broker("broker.local:1883")
            expect_console("^subscribed$", 3000, function()
              publish("cmd/x", "actual")
              expect_publish("echo/cmd/x", "expected", 500)
            end)
            """)
        XCTAssertEqual(result.status, 3, result.stderr)
        XCTAssertTrue(result.stderr.contains(#"expect_publish("echo/cmd/x", "expected", within 500 ms) not met"#), result.stderr)
        XCTAssertTrue(result.stderr.contains(#"last seen: echo/cmd/x "actual" at "#), result.stderr)
    }

    // MARK: The scenario's MQTT client and each fault kind

    func testPublishAndOnPublish() throws {
        let result = try runWithBroker("""
            broker("broker.local:1883")
            local seen = {}
            on_publish("echo/#", function(topic, payload) seen[#seen + 1] = topic .. "=" .. payload end)
            expect_console("^subscribed$", 3000, function()
              publish("cmd/a", "1")
              publish("cmd/b", "2", 1)
              expect_publish("echo/cmd/a", "1", 1000)
              expect_publish("echo/+/b", "%d", 1000, function()
                expect(#seen == 2 and seen[1] == "echo/cmd/a=1" and seen[2] == "echo/cmd/b=2", table.concat(seen, ","))
                -- The broker saw the scenario's own two messages as well.
                expect(#publishes() == 4, "four messages seen at the broker")
                local c = connections()
                expect(#c == 1 and c[1].host == "broker.local" and c[1].port == 1883 and not c[1].accepted,
                  "the device's one connection, as the script named it")
                expect(c[1].target:find("^127%.0%.0%.1:%d+$") and c[1].bytes_in > 0 and c[1].bytes_out > 0,
                  "remapped, with traffic both ways")
                done()
              end)
            end)
            """)
        assertPassed(result)
    }

    /// A TLS broker with a private CA: the scenario's client uses TLS with the same trust
    /// as the device's connections (--cafile), and names the broker as the script does.
    func testScenarioClientOverTLS() throws {
        let broker = try Mosquitto.start(Mosquitto.Options(tls: true))
        defer { broker.stop() }
        let script = try write("tls.lua", """
            m = mqtt.Client("tls-device", 30)
            m:connect("broker.local", 8883, 1, function(c)
              print("secure")
              c:publish("tls/state", "up", 0, 0)
            end, function(c, reason) print("failed " .. reason) end)
            """)
        let scenario = try write("tls_scenario.lua", """
            broker("broker.local:8883", { tls = true })
            expect_publish("tls/state", "up", 3000, function() done() end)
            """)
        let result = try HostProcess.run([
            "--cafile", try XCTUnwrap(broker.certificates).caFile.path,
            "--remap", "broker.local:8883=127.0.0.1:\(try XCTUnwrap(broker.tlsPort))",
            "--scenario", scenario, script,
        ], timeout: 20)
        assertPassed(result)
        XCTAssertEqual(result.stdout, "secure\n")
    }

    /// Under --virtual-time a QoS 0 message on its way through the broker holds time
    /// (the scenario's sync barrier): expectations do not time out before it arrives.
    func testPublishExpectationsUnderVirtualTime() throws {
        let broker = try Mosquitto.start()
        defer { broker.stop() }
        let script = try write("ticker.lua", """
            m = mqtt.Client("ticker", 60)
            local n = 0
            m:on("message", function(c, t, d) print("command " .. d) end)
            m:connect("broker.local", 1883, function(c)
              c:subscribe("ticker/cmd", 0, function()
                tmr.create():alarm(60000, tmr.ALARM_AUTO, function()
                  n = n + 1
                  c:publish("ticker/n", tostring(n), 0, 0)
                end)
              end)
            end)
            """)
        let scenario = try write("ticker_scenario.lua", """
            broker("broker.local:1883")
            -- Ten minutes of device time: one message a minute, each checked on arrival.
            local function expectTick(n, within)
              expect_publish("ticker/n", tostring(n), within, function()
                if n == 10 then
                  publish("ticker/cmd", "stop")
                  expect_console("^command stop$", 100, function() done() end)
                else
                  expectTick(n + 1, 60100)
                end
              end)
            end
            at(59990, function() expectTick(1, 100) end)
            """)
        let result = try HostProcess.run([
            "--virtual-time", "--remap", "broker.local=127.0.0.1:\(broker.port)", "--scenario", scenario, script,
        ], timeout: 30)
        assertPassed(result)
        XCTAssertLessThan(result.seconds, 10, "ten minutes of device time in a few seconds")
    }

    func testDropClosesTheBrokerConnection() throws {
        let result = try runWithBroker("""
            broker("broker.local:1883")
            expect_console("^subscribed$", 3000, function()
              expect(drop("broker.local") == 1, "one connection dropped")
              expect_console("^offline$", 500, function()
                expect_console("^connected 2$", 2000, function() done() end)
              end)
            end)
            """)
        assertPassed(result)
    }

    func testRefuseAndAllow() throws {
        let result = try runWithBroker("""
            refuse("broker.local:1883")
            expect_console("^failed", 2000, function()
              allow("broker.local:1883")
              expect_console("^connected 1$", 2000, function() done() end)
            end)
            """)
        assertPassed(result)
        XCTAssertTrue(result.stdout.hasPrefix("failed "), result.stdout)
    }

    func testFailedDNS() throws {
        let result = try runWithBroker("""
            dns_fail("broker.local")
            expect_console("^failed %-3$", 2000, function()
              dns_ok("broker.local")
              expect_console("^connected 1$", 2000, function() done() end)
            end)
            """)
        assertPassed(result)
    }

    func testDelayHoldsTraffic() throws {
        let result = try runWithBroker("""
            broker("broker.local:1883")
            expect_console("^subscribed$", 3000, function()
              delay("broker.local", 300)
              local sent = now()
              publish("cmd/slow", "x")
              expect_console("^message cmd/slow x$", 2000, function()
                expect(now() - sent >= 300, "the message was held 300 ms, took " .. (now() - sent))
                -- The echo is held on the way out as well.
                local arrived = now()
                expect_publish("echo/cmd/slow", "x", 2000, function()
                  expect(now() - arrived >= 250, "the echo was held (300 ms from its write, just before the print was seen)")
                  done()
                end)
              end)
            end)
            """)
        assertPassed(result)
    }

    func testFragmentedReadsStillDecode() throws {
        let result = try runWithBroker("""
            broker("broker.local:1883")
            expect_console("^subscribed$", 3000, function()
              fragment("broker.local")
              publish("cmd/frag", string.rep("z", 64))
              expect_console("^message cmd/frag " .. string.rep("z", 64) .. "$", 3000, function() done() end)
            end)
            """)
        assertPassed(result)
    }

    func testCutAfterBytesClosesTheConnection() throws {
        let result = try runWithBroker("""
            broker("broker.local:1883")
            expect_console("^subscribed$", 3000, function()
              cut_after("broker.local", 10)
              publish("cmd/long", string.rep("y", 100))
              expect_console("^offline$", 2000, function()
                clear_faults()
                expect_console("^connected 2$", 2000, function() done() end)
              end)
            end)
            """)
        assertPassed(result)
        XCTAssertFalse(result.stdout.contains("message cmd/long"), "the message was cut: \(result.stdout)")
    }

    func testWiFiDropTakesTheLinkDown() throws {
        let result = try runWithBroker("""
            broker("broker.local:1883")
            expect_console("^subscribed$", 3000, function()
              wifi_drop()
              -- Nothing passes: the keepalive (1 s; 2.2 pings after 2 s of send-idleness and
              -- gives up 2 s later) notices; reconnects fail while the AP is gone.
              expect_console("^offline$", 5000, function()
                expect_console("^failed", 2000, function()
                  wifi_restore()
                  expect_console("^connected 2$", 3000, function() done() end)
                end)
              end)
            end)
            """)
        assertPassed(result)
    }
}
