import Foundation

/// Runs the real `nodemcu-host` binary, as a user would, and collects its output.
///
/// `run` waits for the process; `launch` returns a `Running` handle so a test can script a
/// fake broker (or read stdout as it arrives) while the host runs.
public enum HostProcess {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// Wall time from launch to exit.
        public var seconds: Double
        public var timedOut: Bool
    }

    /// The package root (this file is Tests/TestSupport/HostProcess.swift).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The binary next to the test bundle (`swift test` builds it), or
    /// `NODEMCU_HOST_BINARY`.
    public static let binary: URL = {
        if let path = ProcessInfo.processInfo.environment["NODEMCU_HOST_BINARY"] {
            return URL(fileURLWithPath: path)
        }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // The xctest bundle may be given as a path inside itself.
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("nodemcu-host").path),
              directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("nodemcu-host")
    }()

    /// Runs the binary with `arguments`, feeding `input` on stdin, and waits at
    /// most `timeout` seconds (then kills it and reports `timedOut`).
    /// `NODEMCU_CHIPID` defaults to 0xABCDEF (default client id `NodeMCU_abcdef`).
    public static func run(
        _ arguments: [String],
        input: String? = nil,
        currentDirectory: URL? = nil,
        environment: [String: String] = [:],
        timeout: Double = 30
    ) throws -> Result {
        try launch(arguments, input: input, currentDirectory: currentDirectory, environment: environment)
            .wait(timeout: timeout)
    }

    /// Starts the binary and returns at once; see `Running`.
    public static func launch(
        _ arguments: [String],
        input: String? = nil,
        currentDirectory: URL? = nil,
        environment: [String: String] = [:]
    ) throws -> Running {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        var env = ProcessInfo.processInfo.environment
        env["NODEMCU_CHIPID"] = env["NODEMCU_CHIPID"] ?? "0xABCDEF"
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let stdout = Pipe(), stderr = Pipe(), stdin = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin

        let running = Running(process: process)
        process.terminationHandler = { _ in running.exited.signal() }
        running.start = Date()
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        // Drain both pipes concurrently so a chatty process never blocks; stdout is
        // collected chunk by chunk so tests can wait for a line while the host runs.
        for (index, pipe) in [stdout, stderr].enumerated() {
            running.drained.enter()
            DispatchQueue.global().async {
                let handle = pipe.fileHandleForReading
                while true {
                    let data = handle.availableData
                    if data.isEmpty { break }
                    running.output.append(index, data)
                }
                running.output.close(index)
                running.drained.leave()
            }
        }
        return running
    }

    /// A `nodemcu-host` process that is running (or has ended).
    public final class Running: @unchecked Sendable {
        let process: Process
        let exited = DispatchSemaphore(value: 0)
        let drained = DispatchGroup()
        let output = OutputCollector()
        var start = Date()
        private var result: Result?

        init(process: Process) { self.process = process }

        /// The process id (e.g. to read its /proc entries while it runs).
        public var pid: Int32 { process.processIdentifier }
        /// stdout received so far.
        public var stdoutSoFar: String { String(decoding: output.get(0), as: UTF8.self) }
        /// stderr received so far.
        public var stderrSoFar: String { String(decoding: output.get(1), as: UTF8.self) }

        /// Waits until stdout contains `text` (true), or the process has ended or
        /// `timeout` seconds have passed without it (false).
        @discardableResult
        public func waitForOutput(containing text: String, timeout: Double = 5) -> Bool {
            output.wait(timeout: timeout) { data in
                String(decoding: data, as: UTF8.self).contains(text)
            }
        }

        /// Ends the process (SIGTERM) if it is still running and waits for it; for test
        /// teardown after a failure left it waiting for a broker.
        public func stop() {
            if process.isRunning { process.terminate() }
            _ = wait(timeout: 5)
        }

        /// Waits at most `timeout` seconds for the process to end (then kills it and
        /// reports `timedOut`), and returns its status and output.
        public func wait(timeout: Double = 30) -> Result {
            if let result { return result }
            var timedOut = false
            var status: Int32?
            let deadline = Date().addingTimeInterval(timeout)
            // In slices: Foundation's exit monitoring can miss a quick exit, leaving a
            // zombie that it never reports; a zombie still there after three slices
            // (Foundation reaps within milliseconds when it works) is reaped here.
            var zombieSlices = 0
            while status == nil {
                if exited.wait(timeout: .now() + 0.2) == .success { break }
                zombieSlices = process.isUnreapedZombie ? zombieSlices + 1 : 0
                if zombieSlices >= 3 { status = process.reapZombie() }
                if status == nil && Date() >= deadline {
                    timedOut = true
                    kill(process.processIdentifier, SIGTERM)
                    if exited.wait(timeout: .now() + 5) == .success { break }
                    kill(process.processIdentifier, SIGKILL)
                    if exited.wait(timeout: .now() + 5) == .success { break }
                    status = process.reapZombie() ?? -1
                }
            }
            let seconds = Date().timeIntervalSince(start)
            _ = drained.wait(timeout: .now() + 5)
            let result = Result(
                status: status ?? process.terminationStatus,
                stdout: String(decoding: output.get(0), as: UTF8.self),
                stderr: String(decoding: output.get(1), as: UTF8.self),
                seconds: seconds,
                timedOut: timedOut)
            self.result = result
            return result
        }
    }
}

final class OutputCollector: @unchecked Sendable {
    private let condition = NSCondition()
    private var data: [Data] = [Data(), Data()]
    private var closed = [false, false]

    func append(_ index: Int, _ value: Data) {
        condition.lock()
        data[index].append(value)
        condition.broadcast()
        condition.unlock()
    }

    func close(_ index: Int) {
        condition.lock()
        closed[index] = true
        condition.broadcast()
        condition.unlock()
    }

    func get(_ index: Int) -> Data {
        condition.lock()
        defer { condition.unlock() }
        return data[index]
    }

    /// Waits until `ready(stdout)` holds, stdout has ended, or `timeout` passes.
    func wait(timeout: Double, until ready: (Data) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while !ready(data[0]) {
            guard !closed[0], condition.wait(until: deadline) else { return ready(data[0]) }
        }
        return true
    }
}
