import Foundation

/// Runs the real `nodemcu-host` binary, as a user would, and collects its output.
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
    public static func run(
        _ arguments: [String],
        input: String? = nil,
        currentDirectory: URL? = nil,
        environment: [String: String] = [:],
        timeout: Double = 30
    ) throws -> Result {
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

        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        let start = Date()
        try process.run()
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        // Drain both pipes concurrently so a chatty process never blocks.
        let collected = OutputCollector()
        let group = DispatchGroup()
        for (index, pipe) in [stdout, stderr].enumerated() {
            group.enter()
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                collected.set(index, data)
                group.leave()
            }
        }
        var timedOut = false
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            process.terminate()
            if exited.wait(timeout: .now() + 5) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                exited.wait()
            }
        }
        let seconds = Date().timeIntervalSince(start)
        group.wait()
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: collected.get(0), as: UTF8.self),
            stderr: String(decoding: collected.get(1), as: UTF8.self),
            seconds: seconds,
            timedOut: timedOut)
    }
}

private final class OutputCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var data: [Data] = [Data(), Data()]
    func set(_ index: Int, _ value: Data) { lock.withLock { data[index] = value } }
    func get(_ index: Int) -> Data { lock.withLock { data[index] } }
}
