import Foundation
import TestSupport
import XCTest

/// libcrypto is loaded at a script's first `crypto` call, not at start (its 1.4 MiB of
/// resident tables are the idle memory of every run that never hashes).
final class CryptoLoadingTests: XCTestCase {
    func testLibcryptoIsLoadedAtTheFirstCryptoCall() throws {
        let folder = try ScratchFolder(prefix: "crypto-loading")
        defer { folder.remove() }
        // The script hashes once the test has looked at its mappings and made "go".
        let script = try folder.write("hash.lua", """
            print("started")
            local done = false
            tmr.create():alarm(10, tmr.ALARM_AUTO, function()
              if not done and file.exists("go") then
                done = true
                print(encoder.toHex(crypto.hash("sha1", "abc")))
                print("hashed")
              end
            end)
            """)
        for firmware in ["2.2", "3.0"] {
            try? FileManager.default.removeItem(at: folder.url.appendingPathComponent("go"))
            let device = try HostProcess.launch(["--firmware", firmware, "--fs", folder.url.path, script])
            defer { device.stop() }
            XCTAssertTrue(device.waitForOutput(containing: "started"), device.stderrSoFar)
            XCTAssertFalse(try mappings(of: device.pid).contains("libcrypto"), "libcrypto mapped before any crypto call (\(firmware))")

            _ = try folder.write("go", "")
            XCTAssertTrue(device.waitForOutput(containing: "hashed"), device.stderrSoFar)
            XCTAssertTrue(device.stdoutSoFar.contains("a9993e364706816aba3e25717850c26c9cd0d89d"), device.stdoutSoFar)
            XCTAssertTrue(try mappings(of: device.pid).contains("libcrypto.so.3"), "libcrypto not mapped after crypto.hash (\(firmware))")
        }
    }

    /// The process's mappings. Read to the end: String(contentsOfFile:) stops after the
    /// first page of a /proc file (its size is 0), which left most of them out.
    private func mappings(of pid: Int32) throws -> String {
        let file = try XCTUnwrap(FileHandle(forReadingAtPath: "/proc/\(pid)/maps"))
        defer { try? file.close() }
        return String(decoding: try file.readToEnd() ?? Data(), as: UTF8.self)
    }
}
