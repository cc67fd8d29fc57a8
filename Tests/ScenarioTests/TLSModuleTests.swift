import Foundation
import TestSupport
import XCTest

/// tls (spec §4.5) and mqtt `secure` against mosquitto's TLS listeners with
/// certificates the test makes: valid, wrong CA, expired, wrong host name, and a
/// listener that demands a client certificate (`tls.cert.auth`).
final class TLSModuleTests: XCTestCase {
    nonisolated(unsafe) static var broker: Mosquitto?
    nonisolated(unsafe) static var otherCA: TestCertificates?

    override class func setUp() {
        super.setUp()
        var options = Mosquitto.Options(tls: true)
        options.extraTLSListeners = [
            Mosquitto.TLSListener(name: "expired", days: -1),
            Mosquitto.TLSListener(name: "wronghost", san: "DNS:other.example"),
            Mosquitto.TLSListener(name: "clientauth", requireClientCertificate: true),
        ]
        broker = try? Mosquitto.start(options)
        otherCA = try? TestCertificates.generate(
            in: FileManager.default.temporaryDirectory.appendingPathComponent("otherca-\(UUID().uuidString)"),
            commonName: "some other CA")
    }

    override class func tearDown() {
        broker?.stop()
        super.tearDown()
    }

    /// A raw MQTT CONNECT over tls.createConnection; prints the CONNACK's first byte.
    static let tlsClient = """
        local port, ca, auth = tonumber(arg[1]), arg[2], arg[3]
        local function read(path) local f = assert(io.open(path)); local t = f:read("a"); f:close(); return t end
        if ca == "off" then tls.cert.verify(false) elseif ca ~= "system" then print("verify", tls.cert.verify(read(ca))) end
        if auth then print("auth", tls.cert.auth(read(auth .. ".crt") .. read(auth .. ".key"))) end
        local s = tls.createConnection()
        s:on("connection", function(c)
          local ip, p = c:getpeer()
          print("connection", ip, p == port)
          c:send("\\16\\13\\0\\4MQTT\\4\\2\\0\\60\\0\\1t")
        end)
        s:on("receive", function(c, data) print("receive", #data, data:byte(1)); c:close() end)
        s:on("reconnection", function(c, reason) print("reconnection", reason) end)
        s:on("disconnection", function(c) print("disconnection", c) end)
        s:connect(port, "127.0.0.1")
        """

    func run(_ source: String, _ arguments: [String], host: [String] = [], profile: String = "3.0") throws -> HostProcess.Result {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tls-\(UUID().uuidString).lua")
        try source.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        return try HostProcess.run(["--firmware", profile] + host + [url.path] + arguments, timeout: 30)
    }

    func testVerifiedConnectionWithTheRightCA() throws {
        let broker = try XCTUnwrap(Self.broker)
        let certificates = try XCTUnwrap(broker.certificates)
        for profile in ["2.2", "3.0"] {
            let result = try run(Self.tlsClient, [String(broker.tlsPort!), certificates.caFile.path], profile: profile)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stdout, "verify\ttrue\nconnection\t127.0.0.1\ttrue\nreceive\t4\t32\n", profile)
        }
    }

    func testFailuresReportSSLHandshakeFailed() throws {
        let broker = try XCTUnwrap(Self.broker)
        let ca = try XCTUnwrap(broker.certificates).caFile.path
        let cases: [(String, Int, String)] = [
            ("wrong CA", broker.tlsPort!, try XCTUnwrap(Self.otherCA).caFile.path),
            ("expired", broker.extraTLSPorts["expired"]!, ca),
            ("wrong host name", broker.extraTLSPorts["wronghost"]!, ca),
            ("system store", broker.tlsPort!, "system"),
        ]
        for (label, port, trust) in cases {
            let result = try run(Self.tlsClient, [String(port), trust])
            XCTAssertEqual(result.status, 0, "\(label): \(result.stderr)")
            XCTAssertTrue(result.stdout.hasSuffix("reconnection\tSSL handshake failed\n"), "\(label): \(result.stdout)")
            XCTAssertTrue(result.stderr.contains("tls: secure connection failed: TLS handshake failed"), "\(label): \(result.stderr)")
        }
    }

    func testServerRejectsAMissingClientCertificate() throws {
        // TLS 1.3: the client's handshake is done before the server checks; the server's
        // alert then ends the connection before any data arrives.
        let broker = try XCTUnwrap(Self.broker)
        let ca = try XCTUnwrap(broker.certificates).caFile.path
        let result = try run(Self.tlsClient, [String(broker.extraTLSPorts["clientauth"]!), ca])
        XCTAssertTrue(result.stdout.contains("reconnection\t"), result.stdout)
        XCTAssertFalse(result.stdout.contains("receive"), result.stdout)
        XCTAssertTrue(result.stderr.contains("tls: secure connection failed"), result.stderr)
    }

    func testVerificationOffAcceptsAnyCertificate() throws {
        let broker = try XCTUnwrap(Self.broker)
        let result = try run(Self.tlsClient, [String(broker.extraTLSPorts["expired"]!), "off"])
        XCTAssertEqual(result.stdout, "connection\t127.0.0.1\ttrue\nreceive\t4\t32\n", result.stderr)
    }

    func testClientCertificateWithTLSCertAuth() throws {
        let broker = try XCTUnwrap(Self.broker)
        let certificates = try XCTUnwrap(broker.certificates)
        let client = try certificates.issue(name: "client", commonName: "device", san: "DNS:device", usage: "clientAuth")
        let stem = client.certificate.deletingPathExtension().path
        let result = try run(Self.tlsClient, [String(broker.extraTLSPorts["clientauth"]!), certificates.caFile.path, stem])
        XCTAssertEqual(result.stdout, "verify\ttrue\nauth\ttrue\nconnection\t127.0.0.1\ttrue\nreceive\t4\t32\n", result.stderr)
    }

    static let mqttClient = """
        local port, ca = tonumber(arg[1]), arg[2]
        if ca ~= "none" then local f = assert(io.open(ca)); tls.cert.verify(f:read("a")); f:close() end
        local m = mqtt.Client("tls-mqtt", 60)
        m:connect("127.0.0.1", port, true, function(c) print("connected"); c:close() end,
          function(c, reason) print("connfail", reason) end)
        """

    func testMQTTSecureUsesTheSameTrust() throws {
        let broker = try XCTUnwrap(Self.broker)
        let certificates = try XCTUnwrap(broker.certificates)
        let good = try run(Self.mqttClient, [String(broker.tlsPort!), certificates.caFile.path])
        XCTAssertTrue(good.stdout.hasPrefix("connected\n"), good.stdout + good.stderr)
        let bad = try run(Self.mqttClient, [String(broker.tlsPort!), try XCTUnwrap(Self.otherCA).caFile.path])
        XCTAssertEqual(bad.stdout, "connfail\t-5\n", bad.stderr)
        XCTAssertTrue(bad.stderr.contains("secure connection failed"), bad.stderr)
        // The host's --cafile: the script itself trusts nothing special.
        let system = try run(Self.mqttClient, [String(broker.tlsPort!), "none"])
        XCTAssertEqual(system.stdout, "connfail\t-5\n", system.stderr)
        let cafile = try run(Self.mqttClient, [String(broker.tlsPort!), "none"], host: ["--cafile", certificates.caFile.path])
        XCTAssertTrue(cafile.stdout.hasPrefix("connected\n"), cafile.stdout + cafile.stderr)
    }
}
