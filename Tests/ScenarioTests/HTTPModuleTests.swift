import Foundation
import TestSupport
import XCTest

/// http (more-modules §12) against a Python `http.server` the test starts on a free
/// 127.0.0.1 port: status codes, headers, body sizes, chunked, redirects, refused.
final class HTTPModuleTests: XCTestCase {
    /// Runs requests one after another (the module has one callback slot) and prints
    /// code, body (or its length) and chosen headers.
    static let script = """
        local base = "http://127.0.0.1:" .. arg[1]
        local steps = {
          function(k) http.get(base .. "/ok", "X-Mine: yes\\r\\n", k) end,
          function(k) http.get(base .. "/missing", nil, k) end,
          function(k) http.get(base .. "/chunked", nil, k) end,
          function(k) http.get(base .. "/redirect", nil, k) end,
          function(k) http.get(base .. "/dir/rel", nil, k) end,
          function(k) http.get(base .. "/loop", nil, k) end,
          function(k) http.get(base .. "/big?n=8000", nil, k) end,
          function(k) http.get(base .. "/big?n=1048576", nil, k) end,
          function(k) http.post(base .. "/echo", "Content-Type: text/plain\\r\\n", "payload\\0cut", k) end,
          function(k) http.request(base .. "/echo", "PUT", nil, "put body", k) end,
          function(k) http.get("http://127.0.0.1:" .. arg[2] .. "/refused", nil, k) end,
        }
        local i = 0
        local function nextStep()
          i = i + 1
          if steps[i] then steps[i](function(code, body, headers)
            if body and #body > 100 then body = "#" .. #body end
            print(i, code, body, headers and headers["x-dup"], headers and headers["content-length"])
            nextStep()
          end) end
        end
        http.get("ftp://ignored/", nil, function() print("never") end)
        nextStep()
        """

    func testRequestsAgainstALocalServer() throws {
        let server = try NetModuleTests.Peer("http_server.py", [])
        defer { server.stop() }
        let refused = try Mosquitto.freePort()
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("http-\(UUID().uuidString).lua")
        try Self.script.write(to: url, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: url) }
        for profile in ["2.2", "3.0"] {
            let result = try HostProcess.run(["--firmware", profile, url.path, String(server.port), String(refused)], timeout: 30)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stdout, """
                1\t200\tok /ok ESP8266 yes\tsecond\t18
                2\t404\tnot found\tnil\t9
                3\t200\thello chunked world\tnil\tnil
                4\t200\tok /ok ESP8266 \tsecond\t15
                5\t200\tok /dir/ok ESP8266 \tsecond\t19
                6\t-1\tnil\tnil\tnil
                7\t200\t#8000\tnil\t8000
                8\t-1\tnil\tnil\tnil
                9\t201\tgot payload\tnil\t11
                10\t201\tgot put body\tnil\t12
                11\t-1\tnil\tnil\tnil

                """, profile)
            XCTAssertTrue(result.stderr.contains("over 8191 bytes"), result.stderr)
        }
    }
}
