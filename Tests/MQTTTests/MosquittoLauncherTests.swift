import TestSupport
import XCTest

final class MosquittoLauncherTests: XCTestCase {
    func testStartsPublishesAndStops() throws {
        let broker = try Mosquitto.start()
        XCTAssertTrue(Mosquitto.canConnect(broker.port))
        try broker.mosquittoPub(["-t", "launcher/test", "-m", "hello", "-r", "-q", "1"])
        let sub = try broker.mosquittoSub(["-t", "launcher/test", "-C", "1", "-W", "5"])
        XCTAssertEqual(sub.stdout, "hello\n", broker.log())
        broker.stop()
        XCTAssertFalse(Mosquitto.canConnect(broker.port))
    }

    func testPasswordFileRejectsWrongPassword() throws {
        let broker = try Mosquitto.start(.init(users: ["alice": "secret"], allowAnonymous: false))
        defer { broker.stop() }
        let good = try broker.mosquittoPub(["-t", "x", "-m", "1", "-u", "alice", "-P", "secret"])
        XCTAssertEqual(good.status, 0, good.stderr)
        let bad = try broker.mosquittoPub(["-t", "x", "-m", "1", "-u", "alice", "-P", "wrong"])
        XCTAssertNotEqual(bad.status, 0)
    }

    func testTLSListenerStarts() throws {
        let broker = try Mosquitto.start(.init(tls: true))
        defer { broker.stop() }
        let tlsPort = try XCTUnwrap(broker.tlsPort)
        let certs = try XCTUnwrap(broker.certificates)
        let result = try Mosquitto.runTool("mosquitto_pub", [
            "-h", "127.0.0.1", "-p", String(tlsPort), "--cafile", certs.caFile.path,
            "-t", "x", "-m", "tls",
        ])
        XCTAssertEqual(result.status, 0, result.stderr + broker.log())
    }
}
