import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real `mosquitto` broker started by a test on a free 127.0.0.1 port.
///
/// ```swift
/// let broker = try Mosquitto.start(.init(users: ["u": "p"], allowAnonymous: false))
/// defer { broker.stop() }
/// // connect to 127.0.0.1:broker.port
/// ```
///
/// The broker runs with a configuration written into a fresh temporary directory, logs to
/// `logFile` in that directory, and has queue and in-flight limits lifted so that bulk tests
/// are not throttled. `stop()` (also called on deinit) terminates it and waits for it; deinit also removes
/// the temporary directory.
public final class Mosquitto: @unchecked Sendable {
    /// What the generated configuration contains.
    public struct Options: Sendable {
        /// Users for a password file (created with `mosquitto_passwd -b`). Empty: no password file.
        public var users: [String: String]
        /// `allow_anonymous` (mosquitto 2 defaults to false; the launcher defaults to true).
        public var allowAnonymous: Bool
        /// Text of an ACL file (`user u` / `topic readwrite a/#` lines). nil: no ACL file.
        public var acl: String?
        /// Adds a second listener with TLS, using a CA and server certificate generated with
        /// `openssl` (see `TestCertificates`). The server certificate is valid for
        /// `127.0.0.1` and `localhost`.
        public var tls: Bool
        /// Extra configuration lines appended verbatim.
        public var extraConfig: [String]
        /// Further TLS listeners (needs `tls`); their ports are in `extraTLSPorts`.
        public var extraTLSListeners: [TLSListener] = []

        public init(
            users: [String: String] = [:],
            allowAnonymous: Bool = true,
            acl: String? = nil,
            tls: Bool = false,
            extraConfig: [String] = []
        ) {
            self.users = users
            self.allowAnonymous = allowAnonymous
            self.acl = acl
            self.tls = tls
            self.extraConfig = extraConfig
        }
    }

    /// Errors from starting the broker or its client tools.
    /// A further TLS listener with its own server certificate from the same CA.
    public struct TLSListener: Sendable {
        public var name: String
        /// Subject alternative names of its certificate.
        public var san: String
        /// Validity in days (negative: already expired).
        public var days: Int
        /// The listener demands a client certificate from the CA.
        public var requireClientCertificate: Bool

        public init(name: String, san: String = "IP:127.0.0.1,DNS:localhost", days: Int = 30, requireClientCertificate: Bool = false) {
            self.name = name
            self.san = san
            self.days = days
            self.requireClientCertificate = requireClientCertificate
        }
    }

    public struct LaunchError: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The plain MQTT listener's port on 127.0.0.1.
    public let port: Int
    /// The TLS listener's port on 127.0.0.1 (when `Options.tls`).
    public let tlsPort: Int?
    /// Certificates of the TLS listener (when `Options.tls`).
    public let certificates: TestCertificates?
    /// The ports of `Options.extraTLSListeners`, by name.
    public private(set) var extraTLSPorts: [String: Int] = [:]
    /// The temporary directory holding config, password, ACL, certificates and the log.
    public let directory: URL
    /// The broker's log (stdout and stderr).
    public var logFile: URL { directory.appendingPathComponent("mosquitto.log") }

    private let process: Process
    private let lock = NSLock()
    private var stopped = false

    private init(port: Int, tlsPort: Int?, certificates: TestCertificates?, directory: URL, process: Process) {
        self.port = port
        self.tlsPort = tlsPort
        self.certificates = certificates
        self.directory = directory
        self.process = process
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts mosquitto and waits (bounded, 10 s) until its listeners accept TCP connections.
    /// Retries with other ports if a chosen port was taken in the meantime.
    public static func start(_ options: Options = Options()) throws -> Mosquitto {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mosquitto-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificates = options.tls
            ? try TestCertificates.generate(in: directory.appendingPathComponent("certs"))
            : nil
        var issued: [(TLSListener, URL, URL)] = []
        if let certificates {
            for listener in options.extraTLSListeners {
                let files = try certificates.issue(name: listener.name, san: listener.san, days: listener.days)
                issued.append((listener, files.certificate, files.key))
            }
        }
        var lastError: Error = LaunchError("mosquitto did not start")
        for _ in 0..<5 {
            do {
                var options = options
                var extraPorts: [String: Int] = [:]
                for (listener, certificate, key) in issued {
                    let port = try freePort()
                    extraPorts[listener.name] = port
                    options.extraConfig += [
                        "listener \(port) 127.0.0.1", "protocol mqtt",
                        "cafile \(certificates!.caFile.path)", "certfile \(certificate.path)", "keyfile \(key.path)",
                    ]
                    if listener.requireClientCertificate { options.extraConfig.append("require_certificate true") }
                }
                let broker = try launch(options, directory: directory, certificates: certificates)
                broker.extraTLSPorts = extraPorts
                return broker
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    private static func launch(
        _ options: Options, directory: URL, certificates: TestCertificates?
    ) throws -> Mosquitto {
        let port = try freePort()
        let tlsPort = options.tls ? try freePort() : nil
        var config: [String] = [
            "per_listener_settings false",
            "allow_anonymous \(options.allowAnonymous)",
            "persistence false",
            "max_queued_messages 0",
            "max_queued_bytes 0",
            "max_inflight_messages 0",
            "max_inflight_bytes 0",
            "message_size_limit 0",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp true",
            "user \(NSUserName())",
            "listener \(port) 127.0.0.1",
            "protocol mqtt",
        ]
        if let tlsPort, let certificates {
            config += [
                "listener \(tlsPort) 127.0.0.1",
                "protocol mqtt",
                "cafile \(certificates.caFile.path)",
                "certfile \(certificates.serverCertificateFile.path)",
                "keyfile \(certificates.serverKeyFile.path)",
            ]
        }
        if !options.users.isEmpty {
            let passwordFile = directory.appendingPathComponent("passwd")
            _ = FileManager.default.createFile(atPath: passwordFile.path, contents: Data())
            for (user, password) in options.users.sorted(by: { $0.key < $1.key }) {
                let result = try runTool("mosquitto_passwd", ["-b", passwordFile.path, user, password])
                guard result.status == 0 else {
                    throw LaunchError("mosquitto_passwd failed: \(result.stderr)")
                }
            }
            _ = chmod(passwordFile.path, 0o600)
            config.append("password_file \(passwordFile.path)")
        }
        if let acl = options.acl {
            let aclFile = directory.appendingPathComponent("acl")
            try acl.write(to: aclFile, atomically: true, encoding: .utf8)
            _ = chmod(aclFile.path, 0o600)
            config.append("acl_file \(aclFile.path)")
        }
        config += options.extraConfig
        let configFile = directory.appendingPathComponent("mosquitto.conf")
        try (config.joined(separator: "\n") + "\n").write(to: configFile, atomically: true, encoding: .utf8)

        let logFile = directory.appendingPathComponent("mosquitto.log")
        if !FileManager.default.fileExists(atPath: logFile.path) {
            _ = FileManager.default.createFile(atPath: logFile.path, contents: Data())
        }
        let log = try FileHandle(forWritingTo: logFile)
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = try executable("mosquitto")
        process.arguments = ["-c", configFile.path]
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? log.close()

        let broker = Mosquitto(
            port: port, tlsPort: tlsPort, certificates: certificates,
            directory: directory, process: process)
        let deadline = Date().addingTimeInterval(10)
        var ports = [port]
        if let tlsPort { ports.append(tlsPort) }
        while true {
            if !process.isRunning {
                let text = (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
                broker.stop()
                throw LaunchError("mosquitto exited with status \(process.terminationStatus): \(text)")
            }
            if ports.allSatisfy(canConnect) { return broker }
            if Date() > deadline {
                broker.stop()
                throw LaunchError("mosquitto did not accept connections within 10 s")
            }
            usleep(20_000)
        }
    }

    /// Terminates the broker (SIGTERM) and waits for it to exit. Idempotent.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        guard !stopped else { return }
        stopped = true
        if process.isRunning {
            process.terminate()
        }
        _ = process.waitForExit(timeout: 10)
    }

    /// The broker log so far (for failure messages).
    public func log() -> String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    /// Runs `mosquitto_pub` against the plain listener: `-h 127.0.0.1 -p port` plus `arguments`
    /// (e.g. `["-t", "a/b", "-m", "hello", "-q", "1", "-r"]`). Waits for it to finish.
    @discardableResult
    public func mosquittoPub(_ arguments: [String]) throws -> ToolResult {
        try Self.runTool("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(port)] + arguments)
    }

    /// Runs `mosquitto_sub` against the plain listener: `-h 127.0.0.1 -p port` plus `arguments`.
    /// Always bound it, e.g. `["-t", "a/#", "-C", "1", "-W", "5"]`. Waits for it to finish.
    @discardableResult
    public func mosquittoSub(_ arguments: [String]) throws -> ToolResult {
        try Self.runTool("mosquitto_sub", ["-h", "127.0.0.1", "-p", String(port)] + arguments)
    }

    /// Output of a finished command-line tool.
    public struct ToolResult: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs a tool found on PATH (or in /usr/sbin, /usr/bin) and waits for it.
    public static func runTool(_ name: String, _ arguments: [String]) throws -> ToolResult {
        let process = Process()
        process.executableURL = try executable(name)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both pipes fully before waiting (avoids a full-pipe deadlock).
        let errBox = DataBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let status = process.waitForExit()
        return ToolResult(
            status: status,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errBox.data, as: UTF8.self))
    }

    private final class DataBox: @unchecked Sendable {
        var data = Data()
    }

    static func executable(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init)
            + ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        for dir in dirs {
            let candidate = dir + "/" + name
            if FileManager.default.isExecutableFile(atPath: candidate) {
                return URL(fileURLWithPath: candidate)
            }
        }
        throw LaunchError("\(name) not found (apt-get install mosquitto mosquitto-clients)")
    }

    /// A port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LaunchError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw LaunchError("bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getsockname(fd, $0, &length)
            }
        }
        guard named == 0 else { throw LaunchError("getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether a TCP connect to 127.0.0.1:port succeeds right now (blocking, local only).
    public static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }
}
