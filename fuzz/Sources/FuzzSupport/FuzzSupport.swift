import Foundation
import LuaBridge
import NIOCore
import NIOEmbedded
import NodeMCU

/// Shared by the Lua-side fuzz targets: a runtime per firmware profile on an
/// `EmbeddedEventLoop` (time never moves, nothing runs unless the target runs the loop),
/// a Lua harness loaded into it, the libFuzzer driver and the corpus replayer.
public final class FuzzRuntime {
    public let loop = EmbeddedEventLoop()
    public let runtime: Runtime
    public var lua: LuaState { runtime.lua }

    /// `harness` is Lua source run once at boot (defines the harness's globals).
    public init(profile: FirmwareProfile, harness: String) {
        var options = RuntimeOptions()
        options.profile = profile
        // A failing callback (from a task or a stored function) is reported and the runtime goes on.
        options.onError = .continue
        options.chipID = 0xABCDEF
        try! options.board.set("wifi.autoconnect", "false")
        runtime = Runtime(eventLoop: loop, options: options)
        runtime.consoleSink = { _ in }
        runtime.pin()
        var failure: String?
        runtime.start { runtime in
            let lua = runtime.lua
            if let message = lua.load(Array(harness.utf8), chunkName: "=harness") {
                failure = message
            } else if case .error(let error) = lua.pcall(arguments: 0, results: 0) {
                failure = error.message
            }
        }
        loop.run()
        if let failure { fatalError("fuzz harness: \(failure)") }
    }

    /// Calls global `function` with the input as a string and `control`; the harness returns
    /// nil if the properties hold, else a description: a property failure stops the fuzzer.
    public func check(_ function: String, _ input: UnsafeRawBufferPointer, control: Int) {
        fuzzRequire(!runtime.isFinished, "the runtime finished (status \(String(describing: try? runtime.exitStatus.wait())))")
        let lua = self.lua
        let top = lua.top
        _ = lua.getGlobal(function)
        lua.push(input)
        lua.push(control)
        switch lua.pcall(arguments: 2, results: 1) {
        case .ok:
            if let problem = lua.string(at: -1) { fatalError("property failed: \(problem)") }
        case .error(let error):
            fatalError("harness error: \(error.message)")
        }
        lua.pop(lua.top - top)
        loop.run()
    }
}

/// `precondition` that keeps its message in release builds (-O drops precondition
/// messages; fatalError keeps them), so a stopped fuzz run says why. Failures use
/// `fatalError` for the same reason.
public func fuzzRequire(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

#if FUZZING
/// The one check libFuzzer's C callback runs.
nonisolated(unsafe) private var currentCheck: ((UnsafeRawBufferPointer) -> Void)?

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs libFuzzer (linked by `-sanitize=fuzzer`) with `check` as the test function.
public func runFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    check: @escaping (UnsafeRawBufferPointer) -> Void
) -> CInt {
    currentCheck = check
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        currentCheck?(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
}

#endif

/// Without the fuzzer: replays the files and directories named on the command line
/// through `check`.
public func replayCorpus(_ arguments: [String], check: (UnsafeRawBufferPointer) -> Void) throws {
    var count = 0
    let verbose = ProcessInfo.processInfo.environment["FUZZ_SHOW"] != nil
    for path in arguments {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
        let files = isDirectory.boolValue
            ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 }
            : [path]
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            if verbose { FileHandle.standardError.write(Data("input \(file)\n".utf8)) }
            data.withUnsafeBytes { check($0) }
            count += 1
        }
    }
    print("replayed \(count) inputs")
}
