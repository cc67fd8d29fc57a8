import Foundation
import TestSupport
import XCTest

/// The REPL with piped input and on a real terminal (tmux).
final class ReplTests: XCTestCase {
    func testExpressionFromAPipe() throws {
        let result = try HostProcess.run(["-i"], input: "=1+1\n")
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(result.stdout, "2\n")
    }

    func testMultiLineChunksValuesAndErrors() throws {
        let input = """
            x = 20
            =x + 1, "two"
            for i = 1, 2 do
              print("line", i)
            end
            error("oops")
            print("after the error")
            x * 2

            """
        let result = try HostProcess.run(["-i"], input: input)
        XCTAssertEqual(result.status, 0, "the REPL continues after errors by default")
        XCTAssertEqual(result.stdout, """
            21\ttwo
            line\t1
            line\t2
            stdin:1: oops
            stack traceback:
            \t[C]: in function 'error'
            \tstdin:1: in main chunk
            after the error
            40

            """)
    }

    func testErrorsUseTheProfilesPrefixIn30() throws {
        let result = try HostProcess.run(["--firmware", "3.0", "-i"], input: "error('x')\nx = = 1\n")
        XCTAssertTrue(result.stdout.hasPrefix("Lua error: stdin:1: x\n"), result.stdout)
        XCTAssertTrue(result.stdout.contains("Lua error: stdin:1: unexpected symbol near '='"), result.stdout)
    }

    func testTimersKeepRunningAfterEndOfInputUntilIdle() throws {
        let result = try HostProcess.run(["-i"], input: "tmr.create():alarm(100, 0, function() print('late') end)\n")
        XCTAssertEqual(result.stdout, "true\nlate\n", "alarm's result, then the timer after end of input")
        XCTAssertEqual(result.status, 0)
    }

    func testScriptThenRepl() throws {
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("repl-\(getpid()).lua")
        try "greeting = 'hi'\n".write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let result = try HostProcess.run(["-i", script.path], input: "=greeting\n")
        XCTAssertEqual(result.stdout, "hi\n")
    }

    /// A real terminal: prompts, continuation prompts and a timer that prints
    /// while the REPL waits for input.
    func testOnATerminal() throws {
        guard let tmux = Tmux() else { throw XCTSkip("tmux is not installed") }
        defer { tmux.kill() }
        try tmux.start(HostProcess.binary.path)
        try tmux.waitForPrompt(">")
        tmux.type("=6*7")
        try tmux.waitFor("42")
        try tmux.waitForPrompt(">")
        tmux.type("for i = 1, 2 do")
        try tmux.waitForPrompt(">>")
        tmux.type("print('loop', i) end")
        try tmux.waitFor("loop\t2", normalizingTabs: true)
        tmux.type("tmr.create():alarm(200, 0, function() print('timer fired') end)")
        // Nothing is typed now: the timer fires while the REPL waits for input.
        try tmux.waitFor("timer fired")
        tmux.sendKeys("C-d")
        try tmux.waitForExit()
    }

    /// Ctrl-C interrupts a runaway line ("interrupted!") and the REPL goes on, with its
    /// state and its timers (issue 18, guarantee 6). The watchdog is off so that only
    /// Ctrl-C can end the loop.
    func testCtrlCInterruptsARunningLine() throws {
        guard let tmux = Tmux() else { throw XCTSkip("tmux is not installed") }
        defer { tmux.kill() }
        try tmux.start(HostProcess.binary.path + " --watchdog 0")
        try tmux.waitForPrompt(">")
        tmux.type("kept = 41")
        try tmux.waitForPrompt(">")
        // "spinning" (not in the echoed input) is printed by the running chunk: the loop
        // has started when it shows.
        tmux.type("print('spin' .. 'ning') while true do end")
        try tmux.waitFor("spinning")
        tmux.sendKeys("C-c")
        try tmux.waitFor("interrupted!")
        try tmux.waitForPrompt(">")
        tmux.type("=kept + 1")
        try tmux.waitFor("42")
        try tmux.waitForPrompt(">")
        tmux.sendKeys("C-d")
        try tmux.waitForExit()
    }
}

/// Drives a program in a detached tmux session (a real pseudo-terminal).
final class Tmux {
    let session = "nodemcu-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
    let tmuxPath: String
    let statusFile = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-status-\(UUID().uuidString)")

    init?() {
        guard let path = ["/usr/bin/tmux", "/usr/local/bin/tmux"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return nil
        }
        tmuxPath = path
    }

    /// Runs a tmux command and returns its standard output. posix_spawn and waitpid,
    /// not Foundation's Process: its exit monitoring was seen to miss the quick exit of
    /// the tmux client that starts a server, leaving waitUntilExit() hanging.
    @discardableResult
    func tmux(_ arguments: [String]) -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-out-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output.path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = ([tmuxPath] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, tmuxPath, &actions, nil, argv, environ) == 0 else { return "" }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (try? String(contentsOf: output, encoding: .utf8)) ?? ""
    }

    func start(_ command: String) throws {
        let home = FileManager.default.temporaryDirectory.path
        tmux(["new-session", "-d", "-s", session, "-x", "120", "-y", "40",
              "HOME=\(home) NODEMCU_CHIPID=1 \(command); echo $? > \(statusFile.path); sleep 30"])
    }

    func type(_ text: String) {
        tmux(["send-keys", "-t", session, "-l", text])
        tmux(["send-keys", "-t", session, "Enter"])
    }

    func sendKeys(_ keys: String) { tmux(["send-keys", "-t", session, keys]) }

    func screen() -> String { tmux(["capture-pane", "-p", "-t", session]) }

    /// Polls the screen until `text` appears (bounded; fails the wait otherwise).
    func waitFor(_ text: String, normalizingTabs: Bool = false, timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        let wanted = normalizingTabs ? text.replacingOccurrences(of: "\t", with: " ") : text
        while Date() < deadline {
            var screen = screen()
            if normalizingTabs {
                screen = screen.replacingOccurrences(of: "\t", with: " ")
                while screen.contains("  ") { screen = screen.replacingOccurrences(of: "  ", with: " ") }
            }
            if screen.contains(wanted) { return }
            usleep(20_000)
        }
        XCTFail("timed out waiting for \(text.debugDescription); screen:\n\(screen())")
        throw XCTSkip("terminal did not show the expected text")
    }

    /// Waits until the last non-empty line is the prompt (capture-pane drops its
    /// trailing space).
    func waitForPrompt(_ prompt: String, timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let lines = screen().split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if lines.last == prompt { return }
            usleep(20_000)
        }
        XCTFail("timed out waiting for the prompt \(prompt.debugDescription); screen:\n\(screen())")
        throw XCTSkip("terminal did not show the prompt")
    }

    func waitForExit(timeout: TimeInterval = 10) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let status = try? String(contentsOf: statusFile, encoding: .utf8), !status.isEmpty {
                XCTAssertEqual(status.trimmingCharacters(in: .whitespacesAndNewlines), "0")
                return
            }
            usleep(20_000)
        }
        XCTFail("the REPL did not exit at end of input; screen:\n\(screen())")
    }

    func kill() {
        tmux(["kill-session", "-t", session])
        try? FileManager.default.removeItem(at: statusFile)
    }
}
