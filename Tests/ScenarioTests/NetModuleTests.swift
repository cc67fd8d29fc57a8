import Foundation
import TestSupport
import XCTest

/// net against real peers (spec §4): Python sockets the test starts on free 127.0.0.1
/// ports (`Peers/tcp_peer.py`), scripts run through the real binary. No sleeps: every
/// step waits for a line of output or for the process to end.
final class NetModuleTests: XCTestCase {
    static let peers = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Peers")

    /// A running peer and the port it listens on.
    final class Peer {
        let process = Process()
        let input = Pipe()
        var port = 0

        init(_ script: String, _ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", NetModuleTests.peers.appendingPathComponent(script).path] + arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardInput = input
            try process.run()
            // The first line is the port.
            var line = Data()
            while let byte = try output.fileHandleForReading.read(upToCount: 1), let first = byte.first, first != 0x0A {
                line.append(first)
            }
            port = Int(String(decoding: line, as: UTF8.self)) ?? 0
        }

        func stop() {
            try? input.fileHandleForWriting.close()
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
    }

    func script(_ source: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("net-\(UUID().uuidString).lua")
        try source.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func run(_ source: String, _ arguments: [String], profile: String = "2.2") throws -> HostProcess.Result {
        let url = try script(source)
        defer { try? FileManager.default.removeItem(at: url) }
        return try HostProcess.run(["--firmware", profile, url.path] + arguments, timeout: 30)
    }

    static let client = """
        local port, host = tonumber(arg[1]), arg[2] or "127.0.0.1"
        local s = net.createConnection()
        s:on("dns", function(c, ip) print("dns", ip) end)
        s:on("connection", function(c) print("connected"); c:send("hello") end)
        s:on("receive", function(c, data) print("receive", data); c:close(); print("closed") end)
        s:on("disconnection", function(c, err) print("disconnection", err) end)
        s:on("reconnection", function(c, err) print("reconnection", err) end)
        s:connect(port, host)
        """

    func testEchoPeerByName() throws {
        let peer = try Peer("tcp_peer.py", ["echo"])
        defer { peer.stop() }
        for profile in ["2.2", "3.0"] where profile == "2.2" {
            let result = try run(Self.client, [String(peer.port), "localhost"], profile: profile)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stdout, "dns\t127.0.0.1\nconnected\nreceive\thello\nclosed\n")
        }
    }

    func testPeerClosesAtOnce() throws {
        let peer = try Peer("tcp_peer.py", ["close"])
        defer { peer.stop() }
        let result = try run(Self.client.replacingOccurrences(of: "c:send(\"hello\")", with: ""), [String(peer.port)])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "dns\t127.0.0.1\nconnected\ndisconnection\t0\n")
    }

    func testPeerResets() throws {
        let peer = try Peer("tcp_peer.py", ["reset"])
        defer { peer.stop() }
        let result = try run(Self.client, [String(peer.port)])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "dns\t127.0.0.1\nconnected\nreconnection\t-9\n")
    }

    func testRefusedGoesToDisconnectionWithoutReconnection() throws {
        let port = try Mosquitto.freePort()
        let source = Self.client.replacingOccurrences(of: "s:on(\"reconnection\"", with: "-- s:on(\"reconnection\"")
        let result = try run(source, [String(port)])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "dns\t127.0.0.1\ndisconnection\t-9\n")
    }

    func testNeverAcceptingPeerStillConnects() throws {
        // The kernel completes the handshake into the backlog, as for a device.
        let peer = try Peer("tcp_peer.py", ["noaccept"])
        defer { peer.stop() }
        let source = """
            local s = net.createConnection()
            s:on("connection", function(c) print("connected"); c:send("x", function() print("sent"); c:close() end) end)
            s:connect(tonumber(arg[1]))
            """
        let result = try run(source, [String(peer.port)])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "connected\nsent\n")
    }

    func testDNSSuccessAndFailure() throws {
        let source = """
            net.dns.resolve("localhost", function(sk, ip) print("localhost", sk, ip) end)
            net.dns.resolve("no-such-host.invalid", function(sk, ip) print("invalid", sk, ip) end)
            """
        let result = try run(source, [])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("localhost\tnil\t127.0.0.1\n"), result.stdout)
        XCTAssertTrue(result.stdout.contains("invalid\tnil\tnil\n"), result.stdout)
        // A socket whose name does not resolve: dns(nil), then the attempt ends.
        let failed = try run(Self.client, ["1883", "no-such-host.invalid"])
        XCTAssertEqual(failed.stdout, "dns\tnil\nreconnection\t-8\n", failed.stderr)
    }

    func testHoldStopsReadingUntilUnhold() throws {
        let total = 8 * 1024 * 1024
        let peer = try Peer("tcp_peer.py", ["blast", String(total)])
        defer { peer.stop() }
        let source = """
            local got, atHold, held = 0, 0, false
            local s = net.createConnection()
            s:on("receive", function(c, data)
              got = got + #data
              if not held and atHold == 0 then
                held = true; atHold = got; c:hold()
                tmr.create():alarm(500, tmr.ALARM_SINGLE, function()
                  print("while held", got - atHold < 1024 * 1024)
                  held = false; c:unhold()
                end)
              end
            end)
            s:on("disconnection", function(c, err) print("total", got, err) end)
            s:connect(tonumber(arg[1]))
            """
        let result = try run(source, [String(peer.port)])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "while held\ttrue\ntotal\t\(total)\t0\n")
    }

    func testOutsideClientAndLifetimeWithoutReferences() throws {
        // The server is never stored and garbage is collected: it keeps serving.
        let source = """
            net.createServer():listen(0, function(conn)
              conn:on("receive", function(c, data)
                c:send("echo:" .. data)
                if data == "last" then c:on("sent", function(c) c:close(); os.exit(0) end) end
              end)
            end)
            collectgarbage(); collectgarbage()
            tmr.create():alarm(10, tmr.ALARM_SINGLE, function()
              collectgarbage()
              print("ready")
            end)
            """
        // The port: a second script-free way is stderr; here the script listens on 80,
        // which the host maps to a free port and reports.
        let url = try script(source.replacingOccurrences(of: "listen(0,", with: "listen(80,"))
        defer { try? FileManager.default.removeItem(at: url) }
        let host = try HostProcess.launch([url.path])
        defer { host.stop() }
        XCTAssertTrue(host.waitForOutput(containing: "ready"))
        let match = try XCTUnwrap(host.stderrSoFar.firstMatch(of: /listening port 80 is 127\.0\.0\.1:(\d+)/))
        let port = String(match.1)
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = ["python3", Self.peers.appendingPathComponent("tcp_client.py").path, port, "ping", "last"]
        let output = Pipe()
        client.standardOutput = output
        try client.run()
        client.waitUntilExit()
        XCTAssertEqual(String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), "echo:ping\necho:last\n")
        let result = host.wait(timeout: 10)
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    func testUDPSendReceive() throws {
        let peer = try Peer("tcp_peer.py", ["udpecho"])
        defer { peer.stop() }
        let source = """
            local u = net.createUDPSocket()
            u:on("receive", function(s, data, port, ip)
              print("receive", data, port == tonumber(arg[1]), ip)
              s:send(tonumber(arg[1]), "127.0.0.1", "quit")
              s:close()
            end)
            u:send(tonumber(arg[1]), "127.0.0.1", "hi", function(s) print("sent inside send") end)
            print("after send", u:getaddr() ~= nil)
            """
        let result = try run(source, [String(peer.port)])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout, "sent inside send\nafter send\ttrue\nreceive\techo:hi\ttrue\t127.0.0.1\nsent inside send\n")
    }
}
