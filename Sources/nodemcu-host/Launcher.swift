import HostNet
import NIOCore
import NIOPosix
import NodeMCU

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

        if let root = command.fsRoot ?? scriptPath.flatMap({ $0 == "-" ? nil : FileSystem.directoryName($0) }) {
            guard chdir(root) == 0 else { fail("--fs \(root): cannot use it as the file system root", status: 2) }
        }

        var options = RuntimeOptions()
        options.profile = command.firmware
        options.onError = command.onError ?? (wantsRepl ? .continue : .exit)
        options.scriptName = scriptPath ?? "stdin"
        options.scriptArguments = Array(command.scriptAndArguments.dropFirst())
        options.maxInflight = command.maxInflight
        options.busyPollWindow = .microseconds(Int64(command.busyPoll))
        options.trace = command.trace
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
        let started = try! loop.submit { [options, script, wantsRepl] in
            let runtime = Runtime(eventLoop: loop, options: options)
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
                    return runtime.console.receive(input)
                }
            }
            if wantsRepl {
                runtime.console.replActive = true
                runtime.pin()
            }
            runtime.start { runtime in
                runtime.setScriptArguments(script: options.scriptName, arguments: options.scriptArguments)
                for chunk in commandChunks {
                    runtime.run(chunk)
                    // An error under --on-error exit or restart: the rest does not run.
                    if runtime.halted { return }
                }
                if let script { runtime.run(script, arguments: options.scriptArguments) }
            }
            if let runFor {
                loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(runFor * 1e9))) {
                    runtime.finish(status: 0)
                }
            }
            if wantsRepl { runtime.console.startReading() }
            return (runtime.exitStatus, runtime.network.capture)
        }.wait()

        let status = (try? started.0.wait()) ?? 1
        started.1?.close()
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
    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            if n > 0 { result.append(contentsOf: buffer[0..<n]) }
            if n < buffer.count { return ferror(file) == 0 ? result : nil }
        }
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
