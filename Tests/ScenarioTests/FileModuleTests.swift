import Foundation
import TestSupport
import XCTest

/// Runs the scripts under lua/fs-tests with a fresh temporary `--fs` folder each
/// (they create, remove and format files), once per profile (or per profile listed in a
/// `-- firmware: …` header line), and compares stdout with `name.X.out` (stderr with
/// `name.err`). The folder also holds a symlink to a file outside it, which the
/// sandbox must refuse, and the test checks that nothing outside was touched.
final class FileModuleTests: XCTestCase {
    static let directory = HostProcess.packageRoot.appendingPathComponent("lua/fs-tests")

    func testFileModuleScripts() throws {
        let scripts = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
            .filter { $0.hasSuffix(".lua") }.sorted()
        XCTAssertFalse(scripts.isEmpty)
        for script in scripts {
            let source = try String(contentsOf: Self.directory.appendingPathComponent(script), encoding: .utf8)
            let listed = Scenario(source: source).profiles.compactMap { $0 }
            for profile in listed.isEmpty ? ["2.2", "3.0"] : listed {
                try run(script: script, profile: profile)
            }
        }
    }

    private func run(script: String, profile: String) throws {
        let manager = FileManager.default
        let base = manager.temporaryDirectory.appendingPathComponent("nodemcu-fs-\(UUID().uuidString)")
        let flash = base.appendingPathComponent("flash")
        try manager.createDirectory(at: flash, withIntermediateDirectories: true)
        defer { try? manager.removeItem(at: base) }
        let outside = base.appendingPathComponent("outside.txt")
        try Data("secret".utf8).write(to: outside)
        try manager.createSymbolicLink(atPath: flash.appendingPathComponent("outside").path,
                                       withDestinationPath: outside.path)

        let url = Self.directory.appendingPathComponent(script)
        let result = try HostProcess.run(["--firmware", profile, "--fs", flash.path, url.path], timeout: 30)
        let expectedURL = url.deletingPathExtension().appendingPathExtension("\(profile).out")
        let expected = (try? String(contentsOf: expectedURL, encoding: .utf8)) ?? ""
        XCTAssertFalse(result.timedOut, "\(script) (\(profile)): timed out")
        XCTAssertEqual(result.status, 0, "\(script) (\(profile)): stderr: \(result.stderr)")
        XCTAssertEqual(result.stdout, expected, "\(script) (\(profile)): stdout")
        let expectedError = (try? String(contentsOf: url.deletingPathExtension().appendingPathExtension("err"), encoding: .utf8)) ?? ""
        XCTAssertEqual(result.stderr, expectedError, "\(script) (\(profile)): stderr")
        // The sandbox: the file outside is intact and nothing was created next to the folder.
        XCTAssertEqual(try String(contentsOf: outside, encoding: .utf8), "secret")
        XCTAssertEqual(try manager.contentsOfDirectory(atPath: base.path).sorted(), ["flash", "outside.txt"])
        XCTAssertFalse(manager.fileExists(atPath: "/tmp/escape.txt"))
    }
}
