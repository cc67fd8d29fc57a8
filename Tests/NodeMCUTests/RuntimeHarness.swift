import Board
import LuaBridge
import NIOCore
import NIOEmbedded
import NodeMCU
import XCTest

/// A runtime on an `EmbeddedEventLoop`: time moves only when the test says so.
final class RuntimeHarness {
    let loop = EmbeddedEventLoop()
    let runtime: Runtime
    /// What the runtime reports, kept apart so its closures never capture the harness.
    final class Record {
        var output = ""
        var exitStatus: Int32?
        var boots = 0
    }
    let record = Record()
    var output: String { record.output }
    var exitStatus: Int32? { record.exitStatus }
    /// How many times the boot body ran (1 + simulated reboots).
    var boots: Int { record.boots }

    /// `pinned` keeps the process alive like an open REPL, so the test can keep
    /// evaluating after the script went idle; tests of exit-when-idle pass false.
    init(profile: FirmwareProfile = .v2_2, onError: ErrorPolicy = .exit, pinned: Bool = true, script: String? = nil) {
        var options = RuntimeOptions()
        options.profile = profile
        options.onError = onError
        options.chipID = 0xABCDEF
        // The station's association at boot is pending board work that keeps the
        // process alive; these tests are about timers and exit-when-idle.
        try! options.board.set("wifi.autoconnect", "false")
        runtime = Runtime(eventLoop: loop, options: options)
        let record = record
        runtime.consoleSink = { bytes in record.output += String(decoding: bytes, as: UTF8.self) }
        runtime.exitStatus.assumeIsolated().whenSuccess { record.exitStatus = $0 }
        if pinned { runtime.pin() }
        runtime.start { runtime in
            record.boots += 1
            if let script { runtime.run(Chunk(name: "@init.lua", code: Array(script.utf8))) }
        }
    }

    /// Runs a chunk at the top level, as a script would.
    func run(_ code: String) {
        guard !runtime.isFinished else { return XCTFail("the runtime has finished") }
        runtime.run(Chunk(name: "@init.lua", code: Array(code.utf8)))
    }

    /// Evaluates an expression and returns `tostring` of its value.
    func eval(_ expression: String) -> String {
        guard !runtime.isFinished else { return "<finished>" }
        let lua = runtime.lua
        guard lua.load(Array("return tostring(\(expression))".utf8), chunkName: "=eval") == nil,
              case .ok = lua.pcall(arguments: 0, results: 1) else { return "<error>" }
        defer { lua.pop() }
        return lua.string(at: -1) ?? "<nil>"
    }

    /// Runs `code` in protected mode and returns the error message ("" if none).
    func error(_ code: String) -> String {
        guard !runtime.isFinished else { return "<finished>" }
        let lua = runtime.lua
        if let message = lua.load(Array(code.utf8), chunkName: "@init.lua") { return message }
        if case .error(let error) = lua.pcall(arguments: 0, results: 0) { return error.message }
        return ""
    }

    func advance(ms: Int64) { loop.advanceTime(by: .milliseconds(ms)) }

    func takeOutput() -> String {
        defer { record.output = "" }
        return record.output
    }

    deinit {
        if !runtime.isFinished { runtime.finish(status: 0) }
        loop.run()
        try? loop.syncShutdownGracefully()
    }
}
