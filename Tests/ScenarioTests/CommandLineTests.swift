import Foundation
import TestSupport
import XCTest

/// The command line and the process lifetime, through the real binary.
final class CommandLineTests: XCTestCase {
    func testSingleTimerScriptExitsRightAfterItFires() throws {
        let result = try HostProcess.run(["-e", "tmr.create():alarm(50, tmr.ALARM_SINGLE, function() print('fired') end)"])
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(result.stdout, "fired\n")
        // Generous bound: this checks that nothing keeps the process alive, not speed.
        XCTAssertLessThan(result.seconds, 5)
    }

    func testRunForStopsAnAutoTimerScriptWithZero() throws {
        let result = try HostProcess.run([
            "--run-for", "1", "-e", "tmr.create():alarm(100, tmr.ALARM_AUTO, function() print('tick') end)",
        ])
        XCTAssertEqual(result.status, 0)
        let ticks = result.stdout.split(separator: "\n").count
        XCTAssertTrue((5...10).contains(ticks), "about ten 100 ms ticks in one second, got \(ticks)")
        XCTAssertGreaterThanOrEqual(result.seconds, 1)
        XCTAssertLessThan(result.seconds, 10)
    }

    func testMissingScriptAndBadUsage() throws {
        let missing = try HostProcess.run(["no-such-script.lua"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertEqual(missing.stderr, "nodemcu-host: cannot open no-such-script.lua\n")

        let badOption = try HostProcess.run(["--no-such-option"])
        XCTAssertEqual(badOption.status, 2)
        XCTAssertTrue(badOption.stderr.contains("Unknown option '--no-such-option'"), badOption.stderr)

        let badProfile = try HostProcess.run(["--firmware", "1.5", "-e", ""])
        XCTAssertEqual(badProfile.status, 2)
        XCTAssertTrue(badProfile.stderr.contains("2.2"), badProfile.stderr)

        let badInflight = try HostProcess.run(["--max-inflight", "0", "-e", ""])
        XCTAssertEqual(badInflight.status, 2)

        let badBusyPoll = try HostProcess.run(["--busy-poll", "-1", "-e", ""])
        XCTAssertEqual(badBusyPoll.status, 2)
        XCTAssertTrue(badBusyPoll.stderr.contains("--busy-poll"), badBusyPoll.stderr)
        let noBusyPoll = try HostProcess.run(["--busy-poll", "0", "-e", "print(1)"])
        XCTAssertEqual(noBusyPoll.stdout, "1\n")
    }

    func testHelpAndVersion() throws {
        let help = try HostProcess.run(["--help"])
        XCTAssertEqual(help.status, 0)
        for option in ["--firmware", "--remap", "--run-for", "--on-error", "--fs", "--max-inflight", "--busy-poll", "--pcap", "--trace", "-e <CHUNK>", "-i"] {
            XCTAssertTrue(help.stdout.contains(option), "--help lacks \(option)")
        }
        let version = try HostProcess.run(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertFalse(version.stdout.isEmpty)
    }

    func testScriptFromStandardInput() throws {
        let result = try HostProcess.run(["-", "x"], input: "print('from stdin', arg[1])\n")
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(result.stdout, "from stdin\tx\n")
        // A pipe and no script: standard input is the script, as lua.c does.
        let piped = try HostProcess.run([], input: "print(1 + 1)\n")
        XCTAssertEqual(piped.stdout, "2\n")
    }

    func testFileSystemRootDefaultsToTheScriptsFolder() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("nodemcu-fs-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "return {value = 'from helper'}\n".write(to: folder.appendingPathComponent("helper.lua"), atomically: true, encoding: .utf8)
        try "print(require('helper').value) print(dofile('helper.lua').value)\n"
            .write(to: folder.appendingPathComponent("init.lua"), atomically: true, encoding: .utf8)
        let result = try HostProcess.run([folder.appendingPathComponent("init.lua").path])
        XCTAssertEqual(result.stdout, "from helper\nfrom helper\n", result.stderr)

        let explicit = try HostProcess.run(["--fs", folder.path, "-e", "print(io.open('helper.lua') ~= nil)"])
        XCTAssertEqual(explicit.stdout, "true\n", explicit.stderr)

        let missing = try HostProcess.run(["--fs", folder.appendingPathComponent("nope").path, "-e", ""])
        XCTAssertEqual(missing.status, 2)
    }

    /// `dofile`, `loadfile`, `require` and `node.compile` take flash names, as `file` does:
    /// nothing outside the `--fs` folder is read or written; a project's real subfolder
    /// (`lib/util.lua`) still loads.
    func testChunkLoadersStayInTheFlashFolder() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("nodemcu-loaders-\(getpid())")
        let flash = root.appendingPathComponent("flash")
        try FileManager.default.createDirectory(at: flash.appendingPathComponent("lib"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try "return 'outside'".write(to: root.appendingPathComponent("secret.lua"), atomically: true, encoding: .utf8)
        try "return 'util'".write(to: flash.appendingPathComponent("lib/util.lua"), atomically: true, encoding: .utf8)
        let script = """
            print(pcall(dofile, "../secret.lua"))
            print(loadfile("\(root.path)/secret.lua"))
            local ok, message = pcall(require, "secret")
            print(ok, message:match("^[^\\n]*"), message:find("outside") == nil)
            print(pcall(node.compile, "../secret.lua"))
            print(dofile("lib/util.lua"), require("lib.util"))
            """
        let result = try HostProcess.run(["--fs", flash.path, "-e", script])
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 5, result.stdout + result.stderr)
        guard lines.count == 5 else { return }
        XCTAssertEqual(lines[0], "false\tcannot open ../secret.lua: No such file or directory")
        XCTAssertEqual(lines[1], "nil\tcannot open \(root.path)/secret.lua: No such file or directory")
        XCTAssertEqual(lines[2], "false\tmodule 'secret' not found:\ttrue")
        XCTAssertEqual(lines[3], "false\tcannot open/write to file")
        XCTAssertEqual(lines[4], "util\tutil")
        XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("secret.lc").path))
    }

    func testStdoutAndStderrStayInOrder() throws {
        // A quirk-free way to get both streams: print, then a load error.
        let result = try HostProcess.run(["-e", "print('first')", "-e", "syntax error here"])
        XCTAssertEqual(result.stdout, "first\n")
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("nodemcu-host: [string \"(command line)\"]") || result.stderr.hasPrefix("nodemcu-host: (command line)"), result.stderr)
    }
}
