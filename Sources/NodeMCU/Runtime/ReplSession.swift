import LuaBridge

/// The interpreter side of the REPL: takes lines, says which prompt comes next.
///
/// As `lua.c`: a chunk is incomplete while its syntax error ends in `<eof>`;
/// `=expr` and plain expressions print their values; errors are printed per
/// profile (spec §1.4) and do not leave the REPL (under `--on-error continue`).
public final class ReplSession {
    public enum Prompt: Sendable {
        case primary
        case continuation

        public var text: String { self == .primary ? "> " : ">> " }
    }

    unowned let runtime: Runtime
    private var pending: [UInt8] = []
    private var applyPolicy = true

    public init(runtime: Runtime) {
        self.runtime = runtime
    }

    /// Evaluates one input line (without its newline).
    /// Whether an incomplete chunk waits for more lines (a half-entered line).
    public var isContinuing: Bool { !pending.isEmpty }
    /// Whether a line is being run now (its code, or the printing of its results).
    public private(set) var isExecuting = false

    /// `errorsApplyPolicy` false (lines from `node.input`): errors are printed and the
    /// device goes on, as the firmware's console does, whatever `--on-error` says.
    public func feed(_ line: String, errorsApplyPolicy: Bool = true) -> Prompt {
        applyPolicy = errorsApplyPolicy
        guard !runtime.halted else { return .primary }
        isExecuting = true
        defer { isExecuting = false }
        let lua = runtime.lua
        var text = Array(line.utf8)
        if pending.isEmpty, text.first == UInt8(ascii: "=") {
            text = Array("return ".utf8) + text.dropFirst()
        } else if pending.isEmpty, lua.load(Array("return ".utf8) + text, chunkName: "=stdin") == nil {
            execute()
            return .primary
        }
        let code = pending.isEmpty ? text : pending + [UInt8(ascii: "\n")] + text
        if let message = lua.load(code, chunkName: "=stdin") {
            if message.hasSuffix("<eof>") {
                pending = code
                return .continuation
            }
            pending = []
            let error = LuaCallError(message: message, traceback: message)
            runtime.reportTopLevelError(error, repl: true, applyPolicy: applyPolicy)
            return .primary
        }
        pending = []
        execute()
        return .primary
    }

    /// Runs the loaded chunk on top of the stack; prints its results with `print`.
    private func execute() {
        let lua = runtime.lua
        let base = lua.top - 1
        switch lua.pcall(arguments: 0, results: -1) {
        case .ok:
            let count = lua.top - base
            if count > 0 {
                _ = lua.getGlobal("print")
                lua.insert(at: base + 1)
                if case .error(let error) = lua.pcall(arguments: count, results: 0) {
                    runtime.reportTopLevelError(error, repl: true, applyPolicy: applyPolicy)
                }
            }
            lua.top = base
        case .error(let error):
            lua.top = base
            runtime.reportTopLevelError(error, repl: true, applyPolicy: applyPolicy)
        }
        runtime.scheduleIdleCheck()
    }
}
