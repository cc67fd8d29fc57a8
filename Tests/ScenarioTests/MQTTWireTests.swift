import Foundation
import MQTT
import NIOCore
import TestSupport
import XCTest

/// Wire facts of the `mqtt` Lua module (behaviour spec §2): a Lua script run by the real
/// binary against the scripted `FakeBroker`, which checks the exact packets the script
/// produces and answers, drops (FIN) or resets (RST) the link.
///
/// Each test writes its script to `init.lua` in a fresh directory (so positions read
/// `init.lua:N:`) and runs `nodemcu-host --firmware X --remap broker.local=127.0.0.1:<fake
/// broker port> --remap refused.local=127.0.0.1:<port nothing listens on> init.lua`.
/// Synchronisation is by condition only: the broker waits for packets, the test waits for
/// a line on the host's stdout or for the process to end, all with timeouts.
/// `NODEMCU_CHIPID` is 0xABCDEF (set by `HostProcess`), so the default id is `NodeMCU_abcdef`.
final class MQTTWireTests: XCTestCase {
    static let profiles = ["2.2", "3.0"]

    // MARK: Helpers

    /// Runs `source` as init.lua against `broker`.
    func launch(_ source: String, firmware: String, broker: FakeBroker, extra: [String] = []) throws -> HostProcess.Running {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wire-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let script = directory.appendingPathComponent("init.lua")
        try source.write(to: script, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let refused = try Mosquitto.freePort()
        let host = try HostProcess.launch(
            ["--firmware", firmware, "--remap", "broker.local=127.0.0.1:\(broker.port)",
             "--remap", "refused.local=127.0.0.1:\(refused)"] + extra + [script.path])
        // After a failed expectation the host may still wait for its broker.
        addTeardownBlock { host.stop() }
        return host
    }

    /// A fake broker for one test, shut down at its end.
    func fakeBroker(port: Int = 0) throws -> FakeBroker {
        let broker = try FakeBroker.start(port: port)
        addTeardownBlock { broker.shutdown() }
        return broker
    }

    /// Accepts the next connection, checks that it starts with a CONNECT for `clientID`
    /// and (unless `connAck` is nil) answers with that CONNACK return code.
    func acceptSession(_ broker: FakeBroker, clientID: String, connAck: UInt8? = 0) throws -> FakeBroker.Link {
        let link = try broker.accept()
        let packet = try link.nextPacket()
        guard case .connect(let connect) = packet else {
            throw FakeBroker.Failure("expected CONNECT, got \(packet.traceDescription)")
        }
        XCTAssertEqual(String(decoding: connect.clientID, as: UTF8.self), clientID)
        if let connAck { try link.send(Packets.connAck(connAck)) }
        return link
    }

    /// Waits for the host to end and checks status, stdout and stderr.
    func expectExit(_ process: HostProcess.Running, status: Int32 = 0, stdout: String, stderr: String = "",
                    timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line) {
        let result = process.wait(timeout: timeout)
        XCTAssertFalse(result.timedOut, "timed out; stdout so far: \(result.stdout)", file: file, line: line)
        XCTAssertEqual(result.status, status, "exit status; stderr: \(result.stderr)", file: file, line: line)
        XCTAssertEqual(result.stdout, stdout, "stdout", file: file, line: line)
        XCTAssertEqual(result.stderr, stderr, "stderr", file: file, line: line)
    }

    /// Waits (at most 5 s) until the host has printed `text`.
    func waitForOutput(_ process: HostProcess.Running, _ text: String) throws {
        guard process.waitForOutput(containing: text, timeout: 5) else {
            throw FakeBroker.Failure("stdout never contained \"\(text)\"; got \"\(process.stdoutSoFar)\"")
        }
    }

    static func connect(_ id: String, keepAlive: UInt16 = 30, cleanSession: Bool, will: ConnectPacket.Will? = nil,
                        username: String? = nil, password: String? = nil) -> MQTTPacket {
        .connect(ConnectPacket(
            clientID: Array(id.utf8), keepAlive: keepAlive, cleanSession: cleanSession, will: will,
            username: username.map { Array($0.utf8) }, password: password.map { Array($0.utf8) }))
    }

    /// A length-prefixed MQTT string.
    static func s(_ text: String) -> [UInt8] { [0, UInt8(text.utf8.count)] + Array(text.utf8) }

    // MARK: CONNECT contents (spec §2.3, §2.4)

    /// Every `mqtt.Client` / `m:lwt` form below connects in turn; the broker checks each
    /// CONNECT and drops the link, and the script's `offline` starts the next one.
    func testConnectPacketsFromClientAndLwtArguments() throws {
        let script = """
            local keep
            local cases = {
              function() return mqtt.Client() end,
              function() return mqtt.Client(120) end,
              function() return mqtt.Client("k0", 0) end,
              function() return mqtt.Client("empty", 30, "", "") end,
              function() return mqtt.Client("pass", 30, "", "pw", 1) end,
              function() return mqtt.Client("both", 30, "user", "pw", 0) end,
              function() return mqtt.Client("nil", 30, nil, nil, 1) end,
              function() return mqtt.Client("bool", 30, "", "", true) end,
              function() local m = mqtt.Client("will", 30, "", "", 1); m:lwt("will/t", "bye", 1, 1); return m end,
              function() local m = mqtt.Client("will2", 30, "", "", 1); m:lwt("w", "m", 6, 2); return m end,
              function() local m = mqtt.Client("nowill", 30, "", "", 1); m:lwt("", "m", 1, 1); return m end,
              function() return mqtt.Client("cs1", "45", "", "", "1") end,
              function() return mqtt.Client("useronly", 30, "user") end,
              function() keep = mqtt.Client("keep", 30, "", "", 1); keep:lwt("a", "1"); return keep end,
              function() return keep end,
              function() keep:lwt("b", "2", 2, 0); return keep end,
            }
            local i = 0
            local function nextCase()
              i = i + 1
              if not cases[i] then return end
              local m = cases[i]()
              m:on("offline", function() print("offline", i) nextCase() end)
              m:connect("broker.local", 1883)
            end
            nextCase()
            """
        for profile in Self.profiles {
            let v22 = profile == "2.2"
            let broker = try fakeBroker()
            let host = try launch(script, firmware: profile, broker: broker)
            let expected: [MQTTPacket] = [
                Self.connect("NodeMCU_abcdef", keepAlive: 60, cleanSession: v22),
                Self.connect("120", keepAlive: 60, cleanSession: v22),
                Self.connect("k0", keepAlive: 60, cleanSession: v22),
                Self.connect("empty", cleanSession: v22),
                Self.connect("pass", cleanSession: true, password: "pw"),
                Self.connect("both", cleanSession: false, username: "user", password: "pw"),
                Self.connect("nil", cleanSession: v22),
                Self.connect("bool", cleanSession: v22),
                Self.connect("will", cleanSession: true, will: .init(topic: Array("will/t".utf8), message: Array("bye".utf8), qos: 1, retain: true)),
                Self.connect("will2", cleanSession: true, will: .init(topic: Array("w".utf8), message: Array("m".utf8), qos: 2, retain: true)),
                Self.connect("nowill", cleanSession: true),
                Self.connect("cs1", keepAlive: 45, cleanSession: true),
                Self.connect("useronly", cleanSession: v22, username: "user"),
                // the same client connecting again keeps its will; a new lwt() replaces it
                Self.connect("keep", cleanSession: true, will: .init(topic: Array("a".utf8), message: Array("1".utf8))),
                Self.connect("keep", cleanSession: true, will: .init(topic: Array("a".utf8), message: Array("1".utf8))),
                Self.connect("keep", cleanSession: true, will: .init(topic: Array("b".utf8), message: Array("2".utf8), qos: 2)),
            ]
            for (index, packet) in expected.enumerated() {
                let link = try broker.accept()
                if index == 0 {
                    // The default client id, byte for byte: flags 0x02 (2.2) / 0x00 (3.0), keepalive 60.
                    try link.expect(bytes: [0x10, 26] + Self.s("MQTT") + [4, v22 ? 0x02 : 0x00, 0, 60] + Self.s("NodeMCU_abcdef"))
                } else if index == 8 {
                    // will flag 0x04, will QoS 1 << 3, will retain 0x20, clean 0x02
                    try link.expect(bytes: [0x10, 29] + Self.s("MQTT") + [4, 0x2E, 0, 30] + Self.s("will") + Self.s("will/t") + Self.s("bye"))
                } else {
                    let got = try link.nextPacket()
                    XCTAssertEqual(got, packet, "case \(index + 1): \(got.traceDescription)")
                }
                link.close()
            }
            let offline = (1...expected.count).map { "offline\t\($0)\n" }.joined()
            let warnings22 = """
                nodemcu-host: warning: init.lua:9: mqtt.Client: argument 5 (1) is ignored (firmware 2.2)
                nodemcu-host: warning: init.lua:10: mqtt.Client: argument 5 (true) is ignored (firmware 2.2)

                """
            let noCleanSession = "no cleansession given: firmware 3.0 uses 0 (keep the session), although its documentation says 1"
            let warnings30 = [
                (3, noCleanSession), (4, noCleanSession), (5, noCleanSession), (6, noCleanSession),
                (9, "argument 5 (1) is ignored; " + noCleanSession), (10, "argument 5 (true) is ignored; " + noCleanSession),
                (15, noCleanSession),
            ].map { "nodemcu-host: warning: init.lua:\($0.0): mqtt.Client: \($0.1) (firmware 3.0)\n" }.joined()
            expectExit(host, stdout: offline, stderr: v22 ? warnings22 : warnings30)
        }
    }

    // MARK: close() (spec §2.14)

    /// 2.2: DISCONNECT written at once, ahead of an unacknowledged QoS 1 publish; no
    /// `offline`; `close()` returns true; publish right after raises `not connected`.
    func testClose22WritesDisconnectAtOnceWithoutOffline() throws {
        let broker = try fakeBroker()
        let host = try launch("""
            local m = mqtt.Client("closer", 30, "", "", 1)
            m:on("offline", function() print("offline (never in 2.2)") end)
            m:connect("broker.local", 1883, function(c)
              print("publish", c:publish("q1", "held", 1, 0, function() print("puback (never)") end))
              print("close", c:close())
              print("publish after close", pcall(function() return c:publish("x", "y", 0, 0) end))
            end)
            """, firmware: "2.2", broker: broker)
        let link = try acceptSession(broker, clientID: "closer")
        try link.expect(Packets.publish("q1", "held", qos: 1, id: 1))
        try link.expect(.disconnect)
        try link.expectClosed()
        expectExit(host, stdout: """
            publish\ttrue
            close\ttrue
            publish after close\tfalse\tinit.lua:6: not connected

            """)
    }

    /// 3.0: the DISCONNECT waits behind the unacknowledged QoS 1 publish (meanwhile the
    /// client is still connected: publish is accepted and discarded, connect raises); after
    /// the PUBACK it goes out, TCP closes and `offline` fires.
    func testClose30QueuesDisconnectBehindUnackedPublishThenOffline() throws {
        let broker = try fakeBroker()
        let host = try launch("""
            local m = mqtt.Client("closer", 30, "", "", 1)
            m:on("offline", function(c) print("offline", c == m) end)
            m:on("message", function(c, t, d) print("message", t, d) end)
            m:connect("broker.local", 1883, function(c)
              print("publish", c:publish("q1", "held", 1, 0, function() print("puback") end))
              print("close", c:close())
              print("publish after close", c:publish("x", "y", 0, 0))
              print("connect after close", pcall(function() return c:connect("broker.local", 1883) end))
            end)
            """, firmware: "3.0", broker: broker)
        let link = try acceptSession(broker, clientID: "closer")
        try link.expect(Packets.publish("q1", "held", qos: 1, id: 1))
        // A message to the client: once its callback has run, anything close() wrote at
        // once would have arrived.
        try link.send(Packets.publish("sync", "x"))
        try waitForOutput(host, "message\tsync")
        XCTAssertEqual(link.unreadBytes, [], "no DISCONNECT while the PUBACK is outstanding")
        try link.send(Packets.pubAck(1))
        try link.expect(.disconnect)
        try link.expectClosed()
        expectExit(host, stdout: """
            publish\ttrue
            close
            publish after close\ttrue
            connect after close\tfalse\tinit.lua:8: already connected
            message\tsync\tx
            puback
            offline\ttrue

            """)
    }

    /// 2.2: connect() right after close() (allowed at once): the first connection still
    /// gets its DISCONNECT (spec §0.4) and the second one works.
    func testClose22ThenConnectAtOnce() throws {
        let broker = try fakeBroker()
        let host = try launch("""
            local m = mqtt.Client("again", 30, "", "", 1)
            local n = 0
            local function connected(c)
              n = n + 1
              print("connected", n)
              print("close", c:close())
              if n == 1 then print("connect", c:connect("broker.local", 1883, connected)) end
            end
            m:connect("broker.local", 1883, connected)
            """, firmware: "2.2", broker: broker)
        let first = try acceptSession(broker, clientID: "again")
        let second = try acceptSession(broker, clientID: "again")
        try second.expect(.disconnect)
        try second.expectClosed()
        expectExit(host, stdout: "connected\t1\nclose\ttrue\nconnect\ttrue\nconnected\t2\nclose\ttrue\n")
        try first.expect(.disconnect)
        try first.expectClosed()
    }

    // MARK: Packet ids, table forms, acknowledgements (spec §2.10–§2.12)

    /// Packet ids start at 1, a too-large QoS 1 publish uses one up, a table SUBSCRIBE
    /// is one packet (numeric keys become topic strings), suback fires for a 0x80 grant,
    /// a table UNSUBSCRIBE is one packet.
    func testPacketIdsAndTableForms() throws {
        let script = """
            local m = mqtt.Client("ids", 30, "", "", 1)
            local function order(t)
              local keys = {}
              for k in pairs(t) do keys[#keys + 1] = tostring(k) end
              return table.concat(keys, " ")
            end
            m:connect("broker.local", 1883, function(c)
              print("publish", c:publish("a", "1", 1, 0))
              print("oversized", c:publish("a", ("x"):rep(2000), 1, 0))
              local subs = {["t/0"] = 0, ["t/1"] = 1, t2 = 2, [7] = 1}
              local unsubs = {a = true, b = false}
              print("subscribe order", order(subs))
              print("unsubscribe order", order(unsubs))
              print("subscribe", c:subscribe(subs, function(c2) print("suback", c2 == m) end))
              print("unsubscribe", c:unsubscribe(unsubs, function(c2)
                print("unsuback", c2 == m)
                c2:close()
              end))
            end)
            """
        for profile in Self.profiles {
            let broker = try fakeBroker()
            let host = try launch(script, firmware: profile, broker: broker)
            let link = try acceptSession(broker, clientID: "ids")
            try link.expect(Packets.publish("a", "1", qos: 1, id: 1))
            try waitForOutput(host, "unsubscribe order")
            let lines = host.stdoutSoFar.split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
            let subscribeOrder = lines.first { $0.first == "subscribe order" }![1].split(separator: " ").map(String.init)
            let unsubscribeOrder = lines.first { $0.first == "unsubscribe order" }![1].split(separator: " ").map(String.init)
            let qos: [String: UInt8] = ["t/0": 0, "t/1": 1, "t2": 2, "7": 1]
            try link.send(Packets.pubAck(1))
            // id 2 went to the oversized publish
            try link.expect(Packets.subscribe(3, subscribeOrder.map { ($0, qos[$0]!) }))
            try link.send(Packets.subAck(3, [0, 1, 0x80, 0x80]))
            try link.expect(Packets.unsubscribe(4, unsubscribeOrder))
            try link.send(Packets.unsubAck(4))
            try link.expect(.disconnect)
            try link.expectClosed()
            expectExit(host, stdout: """
                publish\ttrue
                oversized\tfalse
                subscribe order\t\(subscribeOrder.joined(separator: " "))
                unsubscribe order\t\(unsubscribeOrder.joined(separator: " "))
                subscribe\ttrue
                unsubscribe\ttrue
                suback\ttrue
                unsuback\ttrue

                """)
        }
    }

    /// Incoming messages: empty topic dropped, empty payload → 2 arguments, QoS 1 acked
    /// after delivery, QoS 2 delivered once on PUBLISH (a DUP re-send is acknowledged, not
    /// delivered again), PINGREQ from the broker answered, binary payloads intact both
    /// ways; the callback gets `m` itself.
    func testIncomingMessages() throws {
        let script = """
            local m = mqtt.Client("incoming", 30, "", "", 1)
            m:on("message", function(c, topic, ...)
              if topic == "bin" then
                -- Lua strings are bytes, both ways
                print("bytes", (...):byte(1, -1))
                c:publish("echo", ..., 0, 0)
                return
              end
              print("message", c == m, topic, select("#", ...), ...)
              if topic == "end" then c:close() end
            end)
            m:connect("broker.local", 1883)
            """
        for profile in Self.profiles {
            let broker = try fakeBroker()
            let host = try launch(script, firmware: profile, broker: broker)
            let link = try acceptSession(broker, clientID: "incoming")
            try link.send(Packets.publish("", "dropped"))
            try link.send(Packets.publish("t", ""))
            try link.send(Packets.publish("t", "one", qos: 1, id: 5))
            try link.expect(Packets.pubAck(5))
            try link.send(Packets.publish("t", "two", qos: 2, id: 6))
            try link.expect(Packets.pubRec(6))
            // The re-send is acknowledged again, but its PUBREC queues behind the first one,
            // which waits for the PUBREL (strictly serial queue, spec §2.12).
            try link.send(Packets.publish("t", "two", qos: 2, dup: true, id: 6))
            try link.send(Packets.pubRel(6))
            try link.expect(Packets.pubRec(6))
            try link.expect(Packets.pubComp(6))
            try link.send(.pingReq)
            try link.expect(.pingResp)
            try link.send(Packets.publish("bin", bytes: [0, 1, 0xFF, 0x80]))
            try link.expect(Packets.publish("echo", bytes: [0, 1, 0xFF, 0x80]))
            try link.send(Packets.publish("end", ""))
            try link.expect(.disconnect)
            try link.expectClosed()
            expectExit(host, stdout: """
                message\ttrue\tt\t0
                message\ttrue\tt\t1\tone
                message\ttrue\tt\t1\ttwo
                bytes\t0\t1\t255\t128
                message\ttrue\tend\t0

                """)
        }
    }

    /// `--max-inflight 3` lets three QoS 1 publishes out before any PUBACK; the default
    /// (1, as on the device) sends the next only after the PUBACK of the previous one.
    func testMaxInflight() throws {
        let script = """
            local m = mqtt.Client("inflight", 30, "", "", 1)
            local acked = 0
            m:on("message", function(c, t) print("message", t) end)
            m:connect("broker.local", 1883, function(c)
              for i = 1, 3 do
                c:publish("q", tostring(i), 1, 0, function(c2)
                  acked = acked + 1
                  print("puback", acked)
                  if acked == 3 then c2:close() end
                end)
              end
            end)
            """
        let stdout = "puback\t1\npuback\t2\npuback\t3\n"
        do {
            let broker = try fakeBroker()
            let host = try launch(script, firmware: "2.2", broker: broker, extra: ["--max-inflight", "3"])
            let link = try acceptSession(broker, clientID: "inflight")
            for id in 1...3 { try link.expect(Packets.publish("q", String(id), qos: 1, id: UInt16(id))) }
            for id in 1...3 { try link.send(Packets.pubAck(UInt16(id))) }
            try link.expect(.disconnect)
            expectExit(host, stdout: stdout)
        }
        do {
            let broker = try fakeBroker()
            let host = try launch(script, firmware: "2.2", broker: broker)
            let link = try acceptSession(broker, clientID: "inflight")
            try link.expect(Packets.publish("q", "1", qos: 1, id: 1))
            try link.send(Packets.publish("sync", "x"))
            try waitForOutput(host, "message\tsync")
            XCTAssertEqual(link.unreadBytes, [], "one QoS 1 publish in flight by default")
            for id in 1...3 {
                if id > 1 { try link.expect(Packets.publish("q", String(id), qos: 1, id: UInt16(id))) }
                try link.send(Packets.pubAck(UInt16(id)))
            }
            try link.expect(.disconnect)
            expectExit(host, stdout: "message\tsync\n" + stdout)
        }
    }

    /// QoS 2 with `--max-inflight 2`: a PUBREL leaves as soon as its PUBREC arrives, ahead
    /// of a PUBLISH still queued; by default (window 1, as on the device) it joins the
    /// queue's tail, behind every publish queued before the PUBREC came.
    func testMaxInflightLetsPubRelOvertakeQueuedQoS2Publishes() throws {
        let script = """
            local m = mqtt.Client("inflight2", 30, "", "", 1)
            local done = 0
            m:connect("broker.local", 1883, function(c)
              for i = 1, 3 do
                c:publish("q", tostring(i), 2, 0, function(c2)
                  done = done + 1
                  if done == 3 then print("pubcomp", done) c2:close() end
                end)
              end
            end)
            """
        do {
            let broker = try fakeBroker()
            let host = try launch(script, firmware: "3.0", broker: broker, extra: ["--max-inflight", "2"])
            let link = try acceptSession(broker, clientID: "inflight2")
            for id in 1...2 { try link.expect(Packets.publish("q", String(id), qos: 2, id: UInt16(id))) }
            try link.send(Packets.pubRec(1))
            try link.expect(Packets.pubRel(1))  // ahead of the queued publish 3
            try link.send(Packets.pubRec(2))
            try link.expect(Packets.pubRel(2))
            try link.send(Packets.pubComp(1))
            try link.expect(Packets.publish("q", "3", qos: 2, id: 3))
            try link.send(Packets.pubRec(3))
            try link.expect(Packets.pubRel(3))
            for id in 2...3 { try link.send(Packets.pubComp(UInt16(id))) }
            try link.expect(.disconnect)
            expectExit(host, stdout: "pubcomp\t3\n")
        }
        do {
            let broker = try fakeBroker()
            let host = try launch(script, firmware: "3.0", broker: broker)
            let link = try acceptSession(broker, clientID: "inflight2")
            for id in 1...3 {
                try link.expect(Packets.publish("q", String(id), qos: 2, id: UInt16(id)))
                try link.send(Packets.pubRec(UInt16(id)))
            }
            for id in 1...3 {
                try link.expect(Packets.pubRel(UInt16(id)))  // behind all three publishes
                try link.send(Packets.pubComp(UInt16(id)))
            }
            try link.expect(.disconnect)
            expectExit(host, stdout: "pubcomp\t3\n")
        }
    }

    // MARK: Connection end and failures (spec §2.8)

    /// FIN → offline (both); reconnecting inside offline works; RST → 2.2 offline only
    /// (connfail cleared at CONNACK), 3.0 connfail(-5) then offline.
    func testFinAndResetOfAnEstablishedSession() throws {
        let script = """
            local m = mqtt.Client("ends", 30, "", "", 1)
            local n = 0
            local function connected() n = n + 1 print("connected", n) end
            local function failed(c, reason) print("connfail", reason, c == m) end
            m:on("offline", function(c)
              print("offline", c == m)
              if n < 2 then c:connect("broker.local", 1883, connected, failed) end
            end)
            m:connect("broker.local", 1883, connected, failed)
            """
        for profile in Self.profiles {
            let broker = try fakeBroker()
            let host = try launch(script, firmware: profile, broker: broker)
            let first = try acceptSession(broker, clientID: "ends")
            try waitForOutput(host, "connected\t1")
            first.close()
            let second = try acceptSession(broker, clientID: "ends")
            try waitForOutput(host, "connected\t2")
            second.reset()
            let reset = profile == "3.0" ? "connfail\t-5\ttrue\n" : ""
            expectExit(host, stdout: "connected\t1\noffline\ttrue\nconnected\t2\n" + reset + "offline\ttrue\n")
        }
    }

    /// CONNACK refused 1–5 and a first packet that is not a CONNACK (-4): connfail(code),
    /// `m:connect()` inside it raises `already connected` (TCP is still up), then offline.
    func testConnAckRefusedAndNotAConnAck() throws {
        let script = """
            local m = mqtt.Client("refusals", 30, "", "", 1)
            local left = 6
            local function attempt()
              m:connect("broker.local", 1883, function() print("connected (never)") end, function(c, reason)
                print("connfail", reason, c == m)
                print("connect inside connfail", pcall(function() return c:connect("broker.local", 1883) end))
              end)
            end
            m:on("offline", function()
              print("offline")
              left = left - 1
              if left > 0 then attempt() end
            end)
            attempt()
            """
        for profile in Self.profiles {
            let broker = try fakeBroker()
            let host = try launch(script, firmware: profile, broker: broker)
            for code in UInt8(1)...5 {
                let link = try acceptSession(broker, clientID: "refusals", connAck: code)
                try link.expectClosed()
            }
            let link = try acceptSession(broker, clientID: "refusals", connAck: nil)
            try link.send(Packets.subAck(1, [0]))
            try link.expectClosed()
            let expected = [1, 2, 3, 4, 5, -4].map {
                "connfail\t\($0)\ttrue\nconnect inside connfail\tfalse\tinit.lua:6: already connected\noffline\n"
            }.joined()
            // The SUBACK in place of the CONNACK is a protocol error: one stderr line
            // (issue 18, defect 4).
            expectExit(host, stdout: expected, stderr: """
                nodemcu-host: mqtt client "refusals": protocol error from the broker: first packet from the broker was SUBACK, not CONNACK; connection closed

                """)
        }
    }

    /// close() inside connfail(5) (TCP still up): 2.2 close() on a connected client never
    /// fires offline; 3.0 fires it once the connection is down.
    func testCloseInsideConnfailWhileTCPIsUp() throws {
        let script = """
            local m = mqtt.Client("closefail", 30, "", "", 1)
            m:on("offline", function() print("offline") end)
            m:connect("broker.local", 1883, function() print("connected (never)") end, function(c, reason)
              print("connfail", reason, "close", c:close())
            end)
            """
        for profile in Self.profiles {
            let broker = try fakeBroker()
            let host = try launch(script, firmware: profile, broker: broker)
            let link = try acceptSession(broker, clientID: "closefail", connAck: 5)
            try link.expectClosed()
            expectExit(host, stdout: profile == "2.2" ? "connfail\t5\tclose\ttrue\n" : "connfail\t5\tclose\noffline\n")
        }
    }

    /// connect() inside connfail(-5) (TCP never up): a quirk warning, and the new attempt
    /// proceeds (host decision, spec §2.8).
    func testConnectInsideConnfailAfterRefusedTCP() throws {
        for profile in Self.profiles {
            let broker = try fakeBroker()
            let host = try launch("""
                local m = mqtt.Client("retry", 30, "", "", 1)
                m:on("offline", function() print("offline") end)
                m:connect("refused.local", 1883, function() print("connected (never)") end, function(c, reason)
                  print("connfail", reason)
                  c:connect("broker.local", 1883, function(c2) print("connected") c2:close() end)
                end)
                """, firmware: profile, broker: broker)
            let link = try acceptSession(broker, clientID: "retry")
            try link.expect(.disconnect)
            let offline = profile == "3.0" ? "offline\n" : ""
            expectExit(host, stdout: "connfail\t-5\nconnected\n" + offline, stderr: """
                nodemcu-host: warning: init.lua:5: m:connect inside the connfail(-5) callback: on the device the teardown that follows corrupts this attempt; the host lets it proceed (firmware \(profile))

                """)
        }
    }

    /// 2.2 autoreconnect: after FIN, offline and then a new connection at once; after a
    /// reset, a new connection without any callback; the connect callback fires again on
    /// every reconnect; close() turns it off.
    func testAutoreconnect22() throws {
        let broker = try fakeBroker()
        let host = try launch("""
            local m = mqtt.Client("auto", 30, "", "", 1)
            local n = 0
            m:on("offline", function() print("offline") end)
            print("connect", m:connect("broker.local", 1883, 0, 1, function(c)
              n = n + 1
              print("connected", n)
              if n == 3 then print("close", c:close()) end
            end, function(c, reason) print("connfail", reason) end))
            """, firmware: "2.2", broker: broker)
        let first = try acceptSession(broker, clientID: "auto")
        try waitForOutput(host, "connected\t1")
        first.close()
        let second = try acceptSession(broker, clientID: "auto")
        try waitForOutput(host, "connected\t2")
        // A reset reconnects silently (the host paces it at one a second).
        second.reset()
        let third = try acceptSession(broker, clientID: "auto")
        try third.expect(.disconnect)
        try third.expectClosed()
        expectExit(host, stdout: """
            Warning, deprecated API! autoreconnect == 1 is deprecated. It will be removed in the next version. See documentation for details.
            connect\ttrue
            connected\t1
            offline
            connected\t2
            connected\t3
            close\ttrue

            """)
        XCTAssertEqual(broker.connectionCount, 3)
    }

    /// 2.2 autoreconnect: `close()` inside the `offline` that precedes the reconnect turns
    /// it off (the client is torn down: close returns false, publish returns false), and
    /// the process ends.
    func testCloseInOfflineStopsAutoreconnect22() throws {
        let broker = try fakeBroker()
        let host = try launch("""
            local m = mqtt.Client("auto", 30, "", "", 1)
            m:on("offline", function(c)
              print("offline, close", c:close(), "publish", c:publish("t", "x", 0, 0))
            end)
            m:connect("broker.local", 1883, 0, 1, function(c) print("connected") end)
            """, firmware: "2.2", broker: broker)
        let link = try acceptSession(broker, clientID: "auto")
        try waitForOutput(host, "connected")
        link.close()
        expectExit(host, stdout: """
            Warning, deprecated API! autoreconnect == 1 is deprecated. It will be removed in the next version. See documentation for details.
            connected
            offline, close\tfalse\tpublish\tfalse

            """, timeout: 5)
        XCTAssertEqual(broker.connectionCount, 1, "no reconnect after close()")
    }

    /// 2.2 autoreconnect: a failed reconnect attempt is retried silently (one a second);
    /// between attempts the client is torn down (publish returns false).
    func testFailedReconnectIsRetried22() throws {
        let broker = try FakeBroker.start()
        let host = try launch("""
            local m = mqtt.Client("auto", 30, "", "", 1)
            local n = 0
            m:on("offline", function(c)
              print("offline")
              local t = tmr.create()
              t:alarm(10, tmr.ALARM_AUTO, function()
                local ok, result = pcall(function() return c:publish("t", "x", 0, 0) end)
                if ok then
                  print("publish between attempts", result)
                  t:unregister()
                end
              end)
            end)
            m:connect("broker.local", 1883, 0, 1, function(c)
              n = n + 1
              print("connected", n)
              if n == 2 then c:close() end
            end)
            """, firmware: "2.2", broker: broker)
        _ = try acceptSession(broker, clientID: "auto")
        try waitForOutput(host, "connected\t1")
        // No listener any more, and the session ends (FIN): the reconnect is refused.
        broker.shutdown()
        try waitForOutput(host, "publish between attempts")
        // Back on the same port: the next retry gets through.
        let again = try fakeBroker(port: broker.port)
        let link = try acceptSession(again, clientID: "auto")
        try link.expect(.disconnect)
        expectExit(host, stdout: """
            Warning, deprecated API! autoreconnect == 1 is deprecated. It will be removed in the next version. See documentation for details.
            connected\t1
            offline
            publish between attempts\tfalse
            connected\t2

            """, timeout: 5)
    }

    // MARK: Incoming size limit (spec §2.13)

    /// 3.0: a PUBLISH larger than max_message_length goes to overflow with the payload bytes
    /// within the first max_message_length bytes of the packet (2 arguments if none); QoS 1
    /// is still acknowledged; without an overflow callback it is dropped silently;
    /// max_message_length 0 means 1024.
    func testOverflow30() throws {
        let broker = try fakeBroker()
        let host = try launch("""
            local m = mqtt.Client("ovf", 30, "", "", 1, 20)
            m:on("message", function(c, t, d)
              print("message", t, d)
              c:on("overflow", function(c2, t2, ...)
                print("overflow", c2 == m, t2, select("#", ...), ...)
                if t2:sub(1, 3) == "end" then c2:close() end
              end)
            end)
            m:on("offline", function()
              local m0 = mqtt.Client("ovf0", 30, "", "", 1, 0)
              m0:on("message", function(c, t, d) print("message", t, #d) end)
              m0:on("overflow", function(c, t, d) print("overflow", t, #d, d == ("d"):rep(1018)) c:close() end)
              m0:connect("broker.local", 1883)
            end)
            m:connect("broker.local", 1883)
            """, firmware: "3.0", broker: broker)
        let link = try acceptSession(broker, clientID: "ovf")
        try link.send(Packets.publish("t", String(repeating: "a", count: 30), qos: 1, id: 1))
        try link.expect(Packets.pubAck(1))
        try link.send(Packets.publish("t", "small"))  // 10 bytes: fits
        // 2 + (2 + 1) + 2 + 20 = 27 bytes: the first 20 hold 13 payload bytes
        try link.send(Packets.publish("t", "0123456789ABCDEFGHIJ", qos: 1, id: 2))
        try link.expect(Packets.pubAck(2))
        // exactly 20 bytes: 2 + (2 + 1) + 15 → a message
        try link.send(Packets.publish("t", String(repeating: "b", count: 15)))
        // an empty topic is dropped, as for message
        try link.send(Packets.publish("", String(repeating: "e", count: 30)))
        // the topic alone fills the first 20 bytes: no partial payload
        try link.send(Packets.publish("end/topic/overflow", "zzz"))
        try link.expect(.disconnect)
        // max_message_length 0 means 1024
        let second = try acceptSession(broker, clientID: "ovf0")
        // 3 + (2 + 1) + 1018 = 1024 bytes: a message; one more byte: overflow with the
        // 1018 payload bytes within the first 1024
        try second.send(Packets.publish("t", String(repeating: "c", count: 1018)))
        try second.send(Packets.publish("t", String(repeating: "d", count: 1019)))
        try second.expect(.disconnect)
        expectExit(host, stdout: """
            message\tt\tsmall
            overflow\ttrue\tt\t1\t0123456789ABC
            message\tt\t\(String(repeating: "b", count: 15))
            overflow\ttrue\tend/topic/overflow\t0
            message\tt\t1018
            overflow\tt\t1018\ttrue

            """)
    }

    /// 2.2 has no max_message_length: a sixth argument is ignored (with a warning) and large
    /// messages arrive whole.
    func testLargeMessagesArriveWhole22() throws {
        let broker = try fakeBroker()
        let host = try launch("""
            local m = mqtt.Client("whole", 30, "", "", 1, 20)
            m:on("message", function(c, t, d) print("message", t, #d, d == ("y"):rep(5000)) c:close() end)
            m:connect("broker.local", 1883)
            """, firmware: "2.2", broker: broker)
        let link = try acceptSession(broker, clientID: "whole")
        try link.send(Packets.publish("big", String(repeating: "y", count: 5000), qos: 1, id: 9))
        // The PUBACK waits for the callback to return (issue 18, defect 1); the callback's
        // 2.2 close() discards the queue and sends DISCONNECT at once, so the message is
        // never acknowledged (a persistent session would get it again).
        try link.expect(.disconnect)
        expectExit(host, stdout: "message\tbig\t5000\ttrue\n", stderr: """
            nodemcu-host: warning: init.lua:1: mqtt.Client: argument 6 (20) is ignored (firmware 2.2)

            """)
    }

    // MARK: TLS (spec §2.6 step 4)

    /// secure requested (2.2: 1, 3.0: true) against a TLS listener whose certificate the
    /// system trust store does not know: connfail(-5) and a stderr line saying why.
    func testSecureConnectWithUntrustedCertificateFails() throws {
        let broker = try Mosquitto.start(.init(tls: true))
        defer { broker.stop() }
        for (profile, call) in [("2.2", "m:connect(\"broker.local\", 8883, 1, 0, f1, f2)"), ("3.0", "m:connect(\"broker.local\", 8883, true, f1, f2)")] {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let script = directory.appendingPathComponent("init.lua")
            try """
                local m = mqtt.Client("tls", 30, "", "", 1)
                m:on("offline", function() print("offline (never: TLS never came up)") end)
                local function f1() print("connected (never)") end
                local function f2(c, reason) print("connfail", reason) end
                \(call)
                """.write(to: script, atomically: true, encoding: .utf8)
            let result = try HostProcess.run(
                ["--firmware", profile, "--remap", "broker.local=127.0.0.1:\(broker.tlsPort!)", script.path], timeout: 20)
            XCTAssertEqual(result.status, 0, profile)
            XCTAssertEqual(result.stdout, "connfail\t-5\n", profile)
            XCTAssertTrue(result.stderr.hasPrefix("nodemcu-host: mqtt: secure connection failed: "), "\(profile): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(profile): \(result.stderr)")
        }
    }

    // MARK: Timeouts (slow: run concurrently)

    /// Keepalive 1 without PINGRESP → offline; no CONNACK within 5 s → connfail(-2) then
    /// offline; an empty client id (no CONNECT can be built) → connfail(-1) after 5 s, then
    /// offline. All six (two profiles) run at once, so the test takes about 5 s.
    func testKeepaliveAndConnectTimeouts() throws {
        func script(_ id: String, keepAlive: Int) -> String {
            """
            local m = mqtt.Client("\(id)", \(keepAlive), "", "", 1)
            m:on("offline", function(c) print("offline", c == m) end)
            m:connect("broker.local", 1883, function() print("connected") end, function(c, reason) print("connfail", reason) end)
            """
        }
        var keepalive: [(FakeBroker, HostProcess.Running, String)] = []
        var noConnAck: [(FakeBroker, HostProcess.Running, String)] = []
        var noConnect: [(FakeBroker, HostProcess.Running, String)] = []
        for profile in Self.profiles {
            var broker = try fakeBroker()
            keepalive.append((broker, try launch(script("ka", keepAlive: 1), firmware: profile, broker: broker), profile))
            broker = try fakeBroker()
            noConnAck.append((broker, try launch(script("silent", keepAlive: 30), firmware: profile, broker: broker), profile))
            broker = try fakeBroker()
            noConnect.append((broker, try launch(script("", keepAlive: 30), firmware: profile, broker: broker), profile))
        }
        var keepaliveLinks: [FakeBroker.Link] = []
        for (broker, _, _) in keepalive { keepaliveLinks.append(try acceptSession(broker, clientID: "ka")) }
        var silentLinks: [FakeBroker.Link] = []
        for (broker, _, _) in noConnAck { silentLinks.append(try acceptSession(broker, clientID: "silent", connAck: nil)) }
        for link in keepaliveLinks {
            try link.expect(.pingReq, timeout: 3)
            try link.expectClosed(timeout: 4)
        }
        for (_, host, _) in keepalive {
            expectExit(host, stdout: "connected\noffline\ttrue\n")
        }
        for ((_, host, _), link) in zip(noConnAck, silentLinks) {
            try link.expectClosed(timeout: 8)
            expectExit(host, stdout: "connfail\t-2\noffline\ttrue\n")
        }
        for (broker, host, _) in noConnect {
            let link = try broker.accept()
            try link.expectClosed(timeout: 8)
            XCTAssertEqual(link.unreadBytes, [], "no CONNECT can be built for an empty client id")
            expectExit(host, stdout: "connfail\t-1\noffline\ttrue\n")
        }
    }

    // MARK: Outgoing QoS flows and the connect sequence (spec §2.7, §2.12)

    /// QoS and retain masking; QoS 2: PUBREC → PUBREL → PUBCOMP, puback on PUBCOMP;
    /// acknowledgements that match nothing outstanding are ignored.
    func testQoS2PublishFlow() throws {
        let script = """
            local m = mqtt.Client("qos2", 30, "", "", 1)
            m:connect("broker.local", 1883, function(c)
              -- QoS and retain are not range-checked: qos & 3, retain & 1 go on the wire
              print("publish", c:publish("m", "x", 4, 2), c:publish("m", "y", "5", 3))
              local n = 0
              print("publish", c:publish("q", "two", 2, 1, function(c2)
                n = n + 1
                print("puback", n, c2 == m)
                if n == 3 then c2:close() end
              end))
            end)
            """
        for profile in Self.profiles {
            let broker = try fakeBroker()
            let host = try launch(script, firmware: profile, broker: broker)
            let link = try acceptSession(broker, clientID: "qos2")
            try link.expect(Packets.publish("m", "x"))
            try link.expect(Packets.publish("m", "y", qos: 1, retain: true, id: 1))
            try link.send(Packets.pubAck(1))
            try link.expect(Packets.publish("q", "two", qos: 2, retain: true, id: 2))
            try link.send(Packets.pubAck(2))  // the wrong kind: ignored
            try link.send(Packets.pubRec(7))  // the wrong id: ignored
            try link.send(Packets.pubRec(2))
            try link.expect(Packets.pubRel(2))
            try link.send(Packets.pubComp(2))
            try link.expect(.disconnect)
            // puback fires for every completed publish (the last function given wins)
            expectExit(host, stdout: "publish\ttrue\ttrue\npublish\ttrue\npuback\t1\ttrue\npuback\t2\ttrue\npuback\t3\ttrue\n")
        }
    }

    /// Between TCP connect and CONNACK the client is "connected": publish and subscribe
    /// are accepted and queued, and go out after the CONNACK.
    func testRequestsBeforeConnAckAreQueued() throws {
        let script = """
            local m = mqtt.Client("early", 30, "", "", 1)
            m:on("connect", function() print("connected") end)
            m:connect("broker.local", 1883)
            local t = tmr.create()
            t:alarm(2, tmr.ALARM_AUTO, function()
              -- "not connected" until TCP is up
              local ok, queued = pcall(function() return m:publish("early", "x", 0, 0) end)
              if ok then
                print("queued", queued, m:subscribe("s", 1, function(c) print("suback") c:close() end))
                t:unregister()
              end
            end)
            """
        for profile in Self.profiles {
            let broker = try fakeBroker()
            let host = try launch(script, firmware: profile, broker: broker)
            let link = try acceptSession(broker, clientID: "early", connAck: nil)
            try waitForOutput(host, "queued")
            XCTAssertEqual(link.unreadBytes, [], "nothing before the CONNACK")
            try link.send(Packets.connAck(0))
            try link.expect(Packets.publish("early", "x"))
            try link.expect(Packets.subscribe(1, [("s", 1)]))
            try link.send(Packets.subAck(1, [1]))
            try link.expect(.disconnect)
            expectExit(host, stdout: "queued\ttrue\ttrue\nconnected\nsuback\n")
        }
    }
}
