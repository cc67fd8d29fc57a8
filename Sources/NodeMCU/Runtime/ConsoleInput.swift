/// What UART 0 receives: standard input (more-modules §5 "Host").
///
/// The launcher's reader thread posts what it reads (a terminal line with its newline,
/// or one `read()` batch from a pipe or file) to `receive`, and `endOfInput` at the
/// end. Without a `uart.on("data")` receiver, completed lines go to the interpreter
/// (the REPL); with one, the receiver decides, as the firmware's console does:
/// `run_input` on gives each line to the callback and then to the interpreter,
/// `run_input` off gives the raw bytes to the callback only.
///
/// Standard input is read only when something wants it: the REPL (`-i`, or a terminal
/// without a script) or a script that registers `uart.on("data", fn)`. It outlives
/// simulated reboots (the receiver is per boot). Use only on the event loop.
public final class ConsoleInput {
    unowned let runtime: Runtime
    /// Starts the launcher's reader thread; set by the launcher.
    public var readerStarter: (() -> Void)?
    private var readerStarted = false
    /// Whether complete lines go to the interpreter without a receiver (the REPL runs).
    public var replActive = false
    public private(set) var ended = false
    /// The uart module's data receiver for the current boot.
    public weak var receiver: ConsoleReceiver?
    private var line: [UInt8] = []
    /// The terminator that ended the last line (CR or LF), so CRLF and LFCR count once.
    private var lastTerminator: UInt8?
    private var interpreterSession: ReplSession?

    init(runtime: Runtime) {
        self.runtime = runtime
    }

    /// The interpreter that console lines (and `node.input`) are fed to.
    public var repl: ReplSession {
        if let interpreterSession { return interpreterSession }
        let session = ReplSession(runtime: runtime)
        interpreterSession = session
        return session
    }

    /// Makes the reader thread run (idempotent).
    public func startReading() {
        guard !readerStarted, let readerStarter else { return }
        readerStarted = true
        readerStarter()
    }

    /// Takes bytes from standard input; returns the prompt the REPL wants next.
    @discardableResult
    public func receive(_ bytes: [UInt8]) -> ReplSession.Prompt {
        if let receiver, !receiver.runsInput {
            receiver.receiveRaw(bytes)
            return .primary
        }
        var prompt = ReplSession.Prompt.primary
        for byte in bytes {
            switch byte {
            case 0x0A, 0x0D:
                if line.isEmpty, let last = lastTerminator, last != byte {
                    lastTerminator = nil  // the second half of CRLF or LFCR
                    continue
                }
                lastTerminator = byte
                let complete = line
                line = []
                prompt = deliver(complete)
            case 0x08, 0x7F:
                lastTerminator = nil
                if !line.isEmpty { line.removeLast() }
            default:
                lastTerminator = nil
                line.append(byte)
            }
        }
        return prompt
    }

    private func deliver(_ complete: [UInt8]) -> ReplSession.Prompt {
        guard !runtime.halted else { return .primary }
        if let receiver {
            receiver.receiveLine(complete)
            guard !runtime.halted else { return .primary }
        } else if !replActive {
            return .primary
        }
        return repl.feed(String(decoding: complete, as: UTF8.self))
    }

    /// Standard input has ended; an unterminated last line still reaches the
    /// interpreter (not a raw receiver: the device would keep waiting for more).
    public func endOfInput() {
        guard !ended else { return }
        if !line.isEmpty, receiver?.runsInput ?? true {
            let rest = line
            line = []
            _ = deliver(rest)
        }
        ended = true
        receiver?.inputEnded()
    }

    /// A simulated reboot: the receiver belonged to the old boot.
    func resetForReboot() {
        receiver = nil
    }
}

/// The `uart.on("data")` side of the console (one per boot).
public protocol ConsoleReceiver: AnyObject {
    /// `run_input` on: lines go to the callback, then to the interpreter.
    var runsInput: Bool { get }
    func receiveLine(_ line: [UInt8])
    func receiveRaw(_ bytes: [UInt8])
    func inputEnded()
}
