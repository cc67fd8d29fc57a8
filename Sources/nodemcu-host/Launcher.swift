import Board
import HostNet
import NIOCore
import NIOPosix
import LuaBridge
import NodeMCU
import Scenario

#if canImport(Glibc)
import Glibc
#endif

/// Turns the parsed command line into a run: reads the script, picks the file
/// system root, starts the runtime on its event loop and the REPL reader, and
/// exits with the runtime's status.
struct Launcher {
    let command: HostCommand

    func run() -> Never {
        let scriptPath = command.scriptAndArguments.first
        let readsStandardInput = isatty(0) != 0
        // As lua.c: the REPL runs with -i, or with nothing else to do on a terminal;
        // with nothing else to do and a pipe, standard input is the script.
        var script: Chunk?
        var wantsRepl = command.interactive
        switch scriptPath {
        case "-"?:
            script = Chunk(name: "=stdin", code: StandardInput.readAll())
        case let path?:
            guard let code = FileSystem.read(path) else {
                fail("cannot open \(path)", status: 1)
            }
            script = Chunk(name: "@" + FileSystem.baseName(path), code: code)
        case nil where command.chunks.isEmpty && !command.interactive:
            if readsStandardInput {
                wantsRepl = true
            } else {
                script = Chunk(name: "=stdin", code: StandardInput.readAll())
            }
        case nil:
            break
        }

        // Relative to where the command was given, not to the --fs root.
        let reportPath = command.report.map(FileSystem.absoluteForWriting)
        // --strict parses the script with luac5.1: by a path that works after the chdir.
        var scriptCheckPath = scriptPath.flatMap { $0 == "-" ? nil : FileSystem.absolute($0) }
        // Read before changing to the file system root: the path is the user's.
        var boardSettings: BoardSettings?
        if let boardPath = command.board {
            guard let bytes = FileSystem.read(boardPath) else { fail("--board \(boardPath): cannot read the file", status: 2) }
            do {
                boardSettings = try BoardSettings(parsing: String(decoding: bytes, as: UTF8.self))
            } catch {
                fail("--board \(boardPath): \(error)", status: 2)
            }
        }

        // --scenario: read before changing to the file system root, too.
        var scenario: (name: String, code: [UInt8])?
        if let path = command.scenario {
            guard let code = FileSystem.read(path) else { fail("--scenario \(path): cannot read the file", status: 2) }
            scenario = (FileSystem.baseName(path), code)
        }

        if let root = command.fsRoot ?? scriptPath.flatMap({ $0 == "-" ? nil : FileSystem.directoryName($0) }) {
            guard chdir(root) == 0 else { fail("--fs \(root): cannot use it as the file system root", status: 2) }
            if command.fsRoot == nil, let path = scriptPath { scriptCheckPath = FileSystem.baseName(path) }
        }

        var options = RuntimeOptions()
        options.profile = command.firmware
        options.onError = command.onError ?? (wantsRepl ? .continue : .exit)
        options.scriptName = scriptPath ?? "stdin"
        options.scriptArguments = Array(command.scriptAndArguments.dropFirst())
        options.maxInflight = command.maxInflight
        if let watchdog = command.watchdog {
            options.watchdogTimeout = watchdog > 0 ? .nanoseconds(Int64(watchdog * 1e9)) : nil
        }
        options.busyPollWindow = .microseconds(Int64(command.busyPoll))
        options.trace = command.trace
        options.clockMode = command.virtualTime ? .virtual : command.speed.map { .accelerated(factor: $0) } ?? .real
        options.heapLimit = command.heapLimit
        options.strict = command.strict
        options.modules = command.modules.map { Set($0.split(separator: ",").map(String.init)) }
        options.expose = command.expose
        if let cafile = command.cafile {
            // Read now: a missing file fails before anything runs.
            guard let file = fopen(cafile, "rb") else { fail("--cafile \(cafile): cannot read the file", status: 2) }
            var pem: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = fread(&chunk, 1, chunk.count, file)
                if count <= 0 { break }
                pem += chunk[0..<count]
            }
            fclose(file)
            guard !pem.isEmpty else { fail("--cafile \(cafile): the file is empty", status: 2) }
            options.extraCAPEM = pem
        }
        if let pcap = command.pcap {
            // Fail before anything runs rather than run without the capture asked for.
            guard let file = fopen(pcap, "wb") else { fail("--pcap \(pcap): cannot write the file", status: 2) }
            fclose(file)
            options.pcapPath = pcap
        }
        if let boardSettings { options.board = boardSettings }
        for entry in command.remap {
            // Already validated by HostCommand.validate().
            try? options.remap.add(parsing: entry)
        }

        if let slice = command.fleetSlice {
            FleetLauncher(command: command, slice: slice, options: options, script: script).run()
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let commandChunks = command.chunks.map { Chunk(name: "=(command line)", code: Array($0.utf8)) }
        let runFor = command.runFor
        let wantsReport = command.report != nil
        let started = try! loop.submit { [options, script, wantsRepl, scriptCheckPath, scenario] in
            let runtime = Runtime(eventLoop: loop, options: options)
            let report = wantsReport ? RunReport() : nil
            report?.attach(to: runtime)
            if options.strict, let scriptCheckPath { runtime.checkSyntax(ofFile: scriptCheckPath) }
            // Standard input is UART 0: read for the REPL, or once a script registers
            // uart.on("data", fn) (ConsoleInput).
            let bound = NIOLoopBound(runtime, eventLoop: loop)
            runtime.console.readerStarter = {
                LineReader.start(on: loop) { input in
                    let runtime = bound.value
                    guard let input else {
                        runtime.console.endOfInput()
                        if wantsRepl { runtime.unpin() }
                        return .primary
                    }
                    guard wantsRepl else { return runtime.console.receive(input) }
                    // Ctrl-C while a line runs interrupts it ("interrupted!") and the REPL
                    // goes on; at the prompt it ends the REPL, as in lua.c.
                    signal(SIGINT) { _ in LuaState.requestInterrupt() }
                    defer { signal(SIGINT, SIG_DFL) }
                    return runtime.console.receive(input)
                }
            }
            if wantsRepl {
                runtime.console.replActive = true
                runtime.pin()
            }
            let body: (Runtime) -> Void = { runtime in
                runtime.setScriptArguments(script: options.scriptName, arguments: options.scriptArguments)
                for chunk in commandChunks {
                    runtime.run(chunk)
                    // An error under --on-error exit or restart: the rest does not run.
                    if runtime.halted { return }
                }
                if let script { runtime.run(script, arguments: options.scriptArguments) }
            }
            let scenarioRunner = ScenarioRunner.boot(runtime, scenario: scenario) {
                runtime.start(body)
            }
            if let runFor {
                // Device time: under --speed or --virtual-time the run covers that much of it;
                // timers due at exactly SECONDS still run (1 µs later than they).
                runtime.clock.schedule(in: .nanoseconds(Int64(runFor * 1e9)) + .microseconds(1)) {
                    scenarioRunner?.runEnding()  // a pending expectation fails the run
                    runtime.finish(status: 0)
                }
            }
            if wantsRepl { runtime.console.startReading() }
            return (runtime.exitStatus, runtime.network.capture, NIOLoopBound((runtime, report), eventLoop: loop))
        }.wait()

        var status = (try? started.0.wait()) ?? 1
        started.1?.close()
        let bound = started.2
        let runStatus = status
        let summary = try? loop.submit { () -> (peak: Int, findings: Int, report: String?) in
            let runtime = bound.value.0
            var finalStatus = runStatus
            if runtime.options.strict, !runtime.portabilityProblems.isEmpty, finalStatus == 0 { finalStatus = 1 }
            return (runtime.heapPeak, runtime.portabilityProblems.count,
                    bound.value.1?.json(runtime: runtime, exitStatus: finalStatus))
        }.wait()
        if let summary {
            if let limit = options.heapLimit {
                Console.diagnostic("heap: peak \(summary.peak) of \(limit) bytes")
            }
            if options.strict, summary.findings > 0 {
                Console.diagnostic("--strict: \(summary.findings) portability problem\(summary.findings == 1 ? "" : "s") (exit status 1)")
                if status == 0 { status = 1 }
            }
            if let path = reportPath, let json = summary.report, !FileSystem.write(path, Array(json.utf8)) {
                Console.diagnostic("--report \(path): cannot write the file")
                if status == 0 { status = 1 }
            }
        }
        LineReader.saveHistory()
        exit(status)
    }

    private func fail(_ message: String, status: Int32) -> Never {
        Console.diagnostic(message)
        exit(status)
    }
}

/// Small file helpers without Foundation (start-up time matters).
enum FileSystem {
    static func read(_ path: String) -> [UInt8]? { HostFile.read(path) }

    static func write(_ path: String, _ bytes: [UInt8]) -> Bool {
        guard let file = fopen(path, "wb") else { return false }
        let written = fwrite(bytes, 1, bytes.count, file)
        return fclose(file) == 0 && written == bytes.count
    }

    /// `path` made absolute against the current directory (the file may not exist yet).
    static func absoluteForWriting(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let cwd = getcwd(nil, 0) else { return path }
        defer { free(cwd) }
        return String(cString: cwd) + "/" + path
    }

    static func absolute(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func baseName(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
    }

    static func directoryName(_ path: String) -> String? {
        guard let slash = path.lastIndex(of: "/") else { return nil }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

enum StandardInput {
    static func readAll() -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = Glibc.read(0, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return result }
            result.append(contentsOf: buffer[0..<n])
        }
    }
}
