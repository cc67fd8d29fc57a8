import ArgumentParser
import NodeMCU

#if canImport(Glibc)
import Glibc
#endif

/// `nodemcu-host test [options] [PATH...]`: the porting-test runner.
struct TestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodemcu-host test",
        abstract: "Run device test files, each in a fresh runtime, and report the results.",
        discussion: """
            Finds *_test.lua and NTest_*.lua files under each PATH (default: the current \
            folder; hidden folders and .build are skipped) and runs each as \
            `nodemcu-host [options] FILE` in its own process, with the file's folder as \
            the file system root. A file fails on a Lua error, a non-zero exit status or \
            the timeout. Files that print NTest's output (`begin NAME`, `  pass NAME: …`, \
            ` ==>  fail NAME: …`, ` ==>  except NAME: …`, `end NAME`) are reported per \
            test case. Exit status: 0 if everything passed, 1 otherwise, 2 for bad usage.
            """
    )

    @Flag(help: "Print TAP version 13 on standard output (for prove and CI plug-ins).")
    var tap = false

    @Option(help: ArgumentHelp("Also write the results as JUnit XML to FILE.", valueName: "FILE"))
    var junit: String?

    @Option(name: .customShort("j"), help: ArgumentHelp("Run N files in parallel.", valueName: "N"))
    var jobs = 1

    @Option(help: ArgumentHelp("Fail a file that runs longer than SECONDS of wall time.", valueName: "SECONDS"))
    var timeout: Double = 60

    @Option(help: ArgumentHelp("Firmware API profile for every file: 2.2 or 3.0.", valueName: "2.2|3.0"))
    var firmware: FirmwareProfile?

    @Flag(name: .customLong("virtual-time"), help: "Run every file under --virtual-time.")
    var virtualTime = false

    @Option(help: ArgumentHelp("Run every file under --speed N.", valueName: "N"))
    var speed: Double?

    @Option(help: ArgumentHelp("Run every file with --heap BYTES.", valueName: "BYTES"))
    var heap: String?

    @Option(help: ArgumentHelp("Run every file with --device (esp8266).", valueName: "esp8266"))
    var device: String?

    @Flag(help: "Run every file with --strict: a portability problem fails the file.")
    var strict = false

    @Option(help: ArgumentHelp("Passed on to every file (repeatable).", valueName: "FROM=TO"))
    var remap: [String] = []

    @Option(name: .customLong("run-for"), help: ArgumentHelp("Passed on: stop each file after SECONDS of device time (a pass unless it failed before).", valueName: "SECONDS"))
    var runFor: Double?

    @Argument(help: ArgumentHelp("Test files or folders to search (default: .).", valueName: "PATH"))
    var paths: [String] = []

    func validate() throws {
        if jobs < 1 || jobs > 256 { throw ValidationError("-j must be between 1 and 256.") }
        if !(timeout > 0 && timeout.isFinite) { throw ValidationError("--timeout takes a positive number of seconds.") }
    }

    /// Host options every file runs with.
    var hostOptions: [String] {
        var options: [String] = []
        if let firmware { options += ["--firmware", firmware.rawValue] }
        if virtualTime { options.append("--virtual-time") }
        if let speed { options += ["--speed", String(speed)] }
        if let heap { options += ["--heap", heap] }
        if let device { options += ["--device", device] }
        if strict { options.append("--strict") }
        for entry in remap { options += ["--remap", entry] }
        if let runFor { options += ["--run-for", String(runFor)] }
        return options
    }

    func run() throws {
        let files = TestDiscovery.find(paths.isEmpty ? ["."] : paths)
        if files.isEmpty {
            Console.diagnostic("test: no *_test.lua or NTest_*.lua files found")
            throw ExitCode(1)
        }
        let runner = TestProcessRunner(executable: TestProcessRunner.selfPath, hostOptions: hostOptions, timeout: timeout)
        let results = runner.run(files, jobs: jobs) { result in
            if !tap { Console.err(TestReporter.progressLine(result)) }
        }
        if tap { Console.out(TestReporter.tap(results)) }
        else { Console.err(TestReporter.summary(results)) }
        if let junit, !FileSystem.write(junit, Array(TestReporter.junit(results).utf8)) {
            Console.diagnostic("test: --junit \(junit): cannot write the file")
            throw ExitCode(1)
        }
        throw ExitCode(results.allSatisfy(\.passed) ? 0 : 1)
    }
}

// MARK: - Discovery

enum TestDiscovery {
    static func isTestFile(_ name: String) -> Bool {
        // A test's scenario (`x_test.scenario.lua`) is not a test itself.
        !name.hasSuffix(".scenario.lua")
            && (name.hasSuffix("_test.lua") || (name.hasPrefix("NTest_") && name.hasSuffix(".lua")))
    }

    /// `--scenario x_test.scenario.lua` for `x_test.lua` when that file exists and the
    /// host options name no scenario of their own.
    static func scenarioOptions(for path: String, _ hostOptions: [String]) -> [String] {
        guard path.hasSuffix(".lua"), !hostOptions.contains("--scenario") else { return [] }
        let scenario = String(path.dropLast(4)) + ".scenario.lua"
        return access(scenario, R_OK) == 0 ? ["--scenario", scenario] : []
    }

    /// Test files under `paths` (a file named explicitly is taken as it is), sorted.
    static func find(_ paths: [String]) -> [String] {
        var found: [String] = []
        for path in paths {
            var info = stat()
            guard stat(path, &info) == 0 else {
                Console.diagnostic("test: \(path): no such file or folder")
                continue
            }
            if info.st_mode & S_IFMT == S_IFDIR { walk(path, into: &found) } else { found.append(path) }
        }
        return Array(Set(found)).sorted()
    }

    private static func walk(_ folder: String, into found: inout [String]) {
        guard let dir = opendir(folder) else { return }
        defer { closedir(dir) }
        var subfolders: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name.hasPrefix(".") { continue }
            let path = folder == "." ? name : (folder.hasSuffix("/") ? folder + name : folder + "/" + name)
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR {
                subfolders.append(path)
            } else if isTestFile(name) {
                found.append(path)
            }
        }
        for folder in subfolders { walk(folder, into: &found) }
    }
}

// MARK: - Results

/// One test case of an NTest run.
struct TestCaseResult {
    var name: String
    var failures: [String] = []
    var passes = 0
    var finished = false
    var passed: Bool { failures.isEmpty && finished }
}

/// One test file's run.
struct TestFileResult {
    var path: String
    var exitStatus: Int32
    var timedOut: Bool
    var seconds: Double
    var output: String
    var cases: [TestCaseResult] = []
    /// NTest's `######## started` without `######## finished`.
    var ntestUnfinished = false

    var processFailure: String? {
        if timedOut { return "timed out" }
        if exitStatus != 0 { return exitStatus < 0 ? "killed by signal \(-exitStatus)" : "exit status \(exitStatus)" }
        if ntestUnfinished { return "the NTest run did not finish" }
        return nil
    }

    var passed: Bool { processFailure == nil && cases.allSatisfy(\.passed) }

    /// Reads NTest's output format (its default TERMINAL_HANDLER).
    mutating func parseNTest() {
        var started = false
        var finished = false
        var current: Int?
        for raw in output.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line.hasPrefix("######## started ") { started = true; continue }
            if line.hasPrefix("######## finished ") { finished = true; continue }
            if line.hasPrefix("begin ") {
                cases.append(TestCaseResult(name: String(line.dropFirst(6))))
                current = cases.count - 1
            } else if line.hasPrefix("end "), let index = current {
                cases[index].finished = true
                current = nil
            } else if line.hasPrefix("  pass "), let index = current {
                cases[index].passes += 1
            } else if line.hasPrefix(" ==>  fail ") || line.hasPrefix(" ==>  except ") {
                let text = line.drop(while: { $0 == " " || $0 == "=" || $0 == ">" })
                if let index = current { cases[index].failures.append(String(text)) }
            }
        }
        // A case that began and never ended: the run stopped inside it.
        ntestUnfinished = started && !finished
    }
}

// MARK: - Running

/// Runs test files as child processes of this binary, `jobs` at a time.
struct TestProcessRunner {
    let executable: String
    let hostOptions: [String]
    let timeout: Double

    static var selfPath: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }

    private final class Child {
        let index: Int
        let path: String
        let pid: pid_t
        let fd: Int32
        let started: Double
        var output: [UInt8] = []
        var open = true
        init(index: Int, path: String, pid: pid_t, fd: Int32, started: Double) {
            self.index = index
            self.path = path
            self.pid = pid
            self.fd = fd
            self.started = started
        }
    }

    static func seconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    func run(_ files: [String], jobs: Int, progress: (TestFileResult) -> Void) -> [TestFileResult] {
        var results = [TestFileResult?](repeating: nil, count: files.count)
        var next = 0
        var running: [Child] = []
        while next < files.count || !running.isEmpty {
            while running.count < jobs && next < files.count {
                if let child = spawn(files[next], index: next) {
                    running.append(child)
                } else {
                    let result = TestFileResult(path: files[next], exitStatus: 127, timedOut: false, seconds: 0,
                                                output: "cannot start \(executable)\n")
                    results[next] = result
                    progress(result)
                }
                next += 1
            }
            var pollfds = running.filter(\.open).map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            if !pollfds.isEmpty { _ = poll(&pollfds, nfds_t(pollfds.count), 50) } else { usleep(10_000) }
            for child in running where child.open { drain(child) }
            let now = Self.seconds()
            running.removeAll { child in
                var status: Int32 = 0
                var timedOut = false
                var done = waitpid(child.pid, &status, WNOHANG) == child.pid
                if !done && now - child.started > timeout {
                    kill(child.pid, SIGKILL)
                    _ = waitpid(child.pid, &status, 0)
                    timedOut = true
                    done = true
                }
                guard done else { return false }
                while child.open { drain(child, blocking: true) }
                close(child.fd)
                let exitStatus: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -(status & 0x7f)
                var result = TestFileResult(
                    path: child.path, exitStatus: exitStatus, timedOut: timedOut, seconds: now - child.started,
                    output: String(decoding: child.output, as: UTF8.self))
                result.parseNTest()
                results[child.index] = result
                progress(result)
                return true
            }
        }
        return results.compactMap { $0 }
    }

    private func drain(_ child: Child, blocking: Bool = false) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(child.fd, &buffer, buffer.count)
            if n > 0 {
                child.output.append(contentsOf: buffer[0..<n])
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN && !blocking { return }
            if n < 0 && errno == EAGAIN {
                // The child has exited; a grandchild may still hold the pipe: stop here.
                child.open = false
                return
            }
            child.open = false
            return
        }
    }

    private func spawn(_ path: String, index: Int) -> Child? {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        let arguments = [executable] + hostOptions + TestDiscovery.scenarioOptions(for: path, hostOptions) + ["--", path]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for arg in argv { free(arg) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(fds[1])
        guard status == 0 else {
            close(fds[0])
            return nil
        }
        return Child(index: index, path: path, pid: pid, fd: fds[0], started: Self.seconds())
    }
}

// MARK: - Reporting

enum TestReporter {
    static func progressLine(_ result: TestFileResult) -> String {
        let time = String(Int((result.seconds * 1000).rounded())) + " ms"
        var text = (result.passed ? "PASS " : "FAIL ") + result.path + " (" + time + ")\n"
        for testCase in result.cases {
            text += (testCase.passed ? "  ok      " : "  not ok  ") + testCase.name + "\n"
            for failure in testCase.failures { text += "          " + failure + "\n" }
        }
        if !result.passed {
            if let failure = result.processFailure { text += "  " + failure + "\n" }
            let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false).suffix(20)
            for line in lines where !line.isEmpty { text += "  | " + line + "\n" }
        }
        return text
    }

    static func summary(_ results: [TestFileResult]) -> String {
        let failed = results.filter { !$0.passed }.count
        let cases = results.flatMap(\.cases)
        var text = "\(results.count) file\(results.count == 1 ? "" : "s"), \(results.count - failed) passed, \(failed) failed"
        if !cases.isEmpty {
            text += "; \(cases.count) test case\(cases.count == 1 ? "" : "s"), \(cases.filter { !$0.passed }.count) failed"
        }
        return text + "\n"
    }

    /// TAP version 13: one test point per plain file, one per NTest case (plus one for
    /// a file whose process failed after its cases).
    static func tap(_ results: [TestFileResult]) -> String {
        var points: [String] = []
        for result in results {
            for testCase in result.cases {
                var point = (testCase.passed ? "ok" : "not ok") + " \(points.count + 1) - " + escape(result.path + ": " + testCase.name)
                if !testCase.passed {
                    let message = testCase.failures.isEmpty ? "did not finish" : testCase.failures.joined(separator: "; ")
                    point += "\n  ---\n  message: " + RunReport.quote(message) + "\n  ..."
                }
                points.append(point)
            }
            if result.cases.isEmpty || result.processFailure != nil {
                var point = (result.processFailure == nil ? "ok" : "not ok") + " \(points.count + 1) - " + escape(result.path)
                if let failure = result.processFailure {
                    point += "\n  ---\n  message: " + RunReport.quote(failure) + "\n  output: |\n"
                    let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false).suffix(40)
                    point += lines.map { "    " + $0 }.joined(separator: "\n") + "\n  ..."
                }
                points.append(point)
            }
        }
        return "TAP version 13\n1..\(points.count)\n" + points.joined(separator: "\n") + "\n"
    }

    private static func escape(_ description: String) -> String {
        description.replacingOccurrences(of: "#", with: "\\#")
    }

    static func junit(_ results: [TestFileResult]) -> String {
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n"
        for result in results {
            let cases = result.cases.isEmpty ? [TestCaseResult(name: result.path, finished: true)] : result.cases
            let failures = cases.filter { !$0.passed }.count + (result.processFailure != nil && !result.cases.isEmpty ? 1 : 0)
            xml += "  <testsuite name=\"\(attr(result.path))\" tests=\"\(cases.count)\" failures=\"\(failures)\" time=\"\(String(format3(result.seconds)))\">\n"
            for testCase in cases {
                xml += "    <testcase classname=\"\(attr(result.path))\" name=\"\(attr(testCase.name))\">"
                let failure: String?
                if result.cases.isEmpty {
                    failure = result.processFailure
                } else {
                    failure = testCase.passed ? nil : (testCase.failures.isEmpty ? "did not finish" : testCase.failures.joined(separator: "; "))
                }
                if let failure { xml += "<failure message=\"\(attr(failure))\">\(attr(result.output))</failure>" }
                xml += "</testcase>\n"
            }
            if !result.cases.isEmpty, let failure = result.processFailure {
                xml += "    <testcase classname=\"\(attr(result.path))\" name=\"(process)\"><failure message=\"\(attr(failure))\">\(attr(result.output))</failure></testcase>\n"
            }
            xml += "    <system-out>\(attr(result.output))</system-out>\n  </testsuite>\n"
        }
        return xml + "</testsuites>\n"
    }

    private static func format3(_ value: Double) -> String {
        let millis = Int((value * 1000).rounded())
        let fraction = String(millis % 1000)
        return "\(millis / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    private static func attr(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "\n", "\t", "\r": out.unicodeScalars.append(scalar)
            case _ where scalar.value < 0x20: continue
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
