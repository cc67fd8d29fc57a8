import Foundation
import TestSupport
import XCTest

/// The simulated board through the real binary: `--board FILE` sets what the script
/// reads and schedules what the world does to it.
final class BoardCommandLineTests: XCTestCase {
    var scratch: ScratchFolder!
    var folder: URL { scratch.url }

    override func setUpWithError() throws {
        scratch = try ScratchFolder(prefix: "board")
    }

    override func tearDownWithError() throws {
        scratch.remove()
    }

    func write(_ name: String, _ text: String) throws -> String {
        try scratch.write(name, text)
    }

    /// Edges the board file schedules fire `gpio.trig` callbacks as the trigger type says;
    /// the pending edges keep the process alive until they have happened.
    func testTrigCallbackFiresOnScheduledEdges() throws {
        let board = try write("edges.board", """
            gpio.2 = 1
            gpio.2.at = 100:0, 200:1, 300:0, 400:1
            """)
        let script = try write("init.lua", """
            gpio.mode(2, gpio.INT, gpio.PULLUP)
            print("level", gpio.read(2))
            gpio.trig(2, "down", function(level, when, count)
              print("down", level, gpio.read(2), type(when), count)
            end)
            """)
        for (profile, expected) in [("2.2", "nil\tnil"), ("3.0", "number\t1")] {
            let result = try HostProcess.run(["--firmware", profile, "--board", board, script], timeout: 20)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stdout, "level\t1\ndown\t0\t0\t\(expected)\ndown\t0\t0\t\(expected)\n", profile)
        }
    }

    /// A typical init.lua: eventmon callbacks in order, STA_GOT_IP from the board's
    /// address, then the application starts.
    func testWiFiEventsInOrderBeforeTheAppStarts() throws {
        let board = try write("wifi.board", """
            wifi.ssid = Office
            wifi.ip = 172.16.0.9
            wifi.netmask = 255.255.0.0
            wifi.gateway = 172.16.0.1
            wifi.connect_ms = 300
            """)
        let script = try write("init.lua", """
            wifi.eventmon.register(wifi.eventmon.STA_CONNECTED, function(t) print("connected", t.SSID) end)
            wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function(t)
              print("got ip", t.IP, t.netmask, t.gateway, wifi.sta.status())
              dofile("app.lua")
            end)
            print("boot", wifi.sta.status(), wifi.sta.getip())
            """)
        _ = try write("app.lua", "print('app running', wifi.sta.getip())\n")
        let result = try HostProcess.run(["--board", board, script], timeout: 20)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, """
            boot\t1\tnil
            connected\tOffice
            got ip\t172.16.0.9\t255.255.0.0\t172.16.0.1\t5
            app running\t172.16.0.9\t255.255.0.0\t172.16.0.1

            """)
    }

    /// A link drop the board file schedules: STA_DISCONNECTED with its reason, then the
    /// station reconnects by itself.
    func testLinkDropAndReconnect() throws {
        let board = try write("drop.board", "wifi.drop.at = 500:200\nwifi.ip = 10.9.8.7\n")
        let script = try write("init.lua", """
            local n = 0
            wifi.eventmon.register(wifi.eventmon.STA_DISCONNECTED, function(t) print("lost", t.reason, wifi.sta.status()) end)
            wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function(t)
              n = n + 1
              print("ip", n, t.IP)
            end)
            """)
        let result = try HostProcess.run(["--board", board, script], timeout: 20)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "ip\t1\t10.9.8.7\nlost\t200\t1\nip\t2\t10.9.8.7\n")
    }

    func testBadBoardFileIsAUsageError() throws {
        let board = try write("bad.board", "adc = 5\nwifi.outcome = maybe\n")
        let result = try HostProcess.run(["--board", board, "-e", "print(1)"], timeout: 20)
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stdout, "")
        XCTAssertTrue(result.stderr.contains("line 2: expected success, wrong_password, no_ap or fail"), result.stderr)
    }
}
