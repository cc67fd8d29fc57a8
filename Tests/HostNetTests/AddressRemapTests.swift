import HostNet
import XCTest

final class AddressRemapTests: XCTestCase {
    func testParsingAndApplying() throws {
        let remap = try AddressRemap(parsing: "broker.example.com:1883=127.0.0.1:1884, Broker.Example.com=127.0.0.1,tls.example:8883=localhost")
        XCTAssertEqual(remap.rules.count, 3)
        XCTAssertTrue(remap.apply(host: "broker.example.com", port: 1883) == ("127.0.0.1", 1884))
        XCTAssertTrue(remap.apply(host: "BROKER.example.com", port: 8883) == ("127.0.0.1", 8883), "host-only rule keeps the port")
        XCTAssertTrue(remap.apply(host: "tls.example", port: 8883) == ("localhost", 8883))
        XCTAssertTrue(remap.apply(host: "tls.example", port: 1) == ("tls.example", 1))
        XCTAssertTrue(remap.apply(host: "other", port: 1883) == ("other", 1883))
    }

    func testHostPortRuleWinsOverHostRule() throws {
        var remap = AddressRemap()
        try remap.add(parsing: "h=10.0.0.1")
        try remap.add(parsing: "h:1883=127.0.0.1:2000")
        XCTAssertTrue(remap.apply(host: "h", port: 1883) == ("127.0.0.1", 2000))
        XCTAssertTrue(remap.apply(host: "h", port: 80) == ("10.0.0.1", 80))
    }

    func testIPv6InBrackets() throws {
        let remap = try AddressRemap(parsing: "[::1]:1883=[::1]:2883")
        XCTAssertEqual(remap.rules, [.init(fromHost: "::1", fromPort: 1883, toHost: "::1", toPort: 2883)])
        XCTAssertTrue(remap.apply(host: "::1", port: 1883) == ("::1", 2883))
    }

    func testBadInputHasAClearError() {
        for bad in ["", "a", "a=b=c", "=b", "a=", "a:x=b", "a=b:0", "a=b:70000", "::1=b", "[::1=b", "a:1883=b c"] {
            XCTAssertThrowsError(try AddressRemap(parsing: bad), bad) { error in
                let text = String(describing: error)
                XCTAssertTrue(text.hasPrefix("invalid remap entry"), text)
                XCTAssertTrue(text.contains("FROM=TO"), text)
            }
        }
    }
}
