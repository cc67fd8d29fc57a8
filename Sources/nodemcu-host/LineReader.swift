import CEditLine
import NIOCore
import NIOPosix
import NodeMCU

#if canImport(Glibc)
import Glibc
#endif

/// Reads REPL input on its own thread and posts each line to the event loop,
/// waiting for the prompt that comes next (DESIGN.md, REPL). Works with
/// terminals (libedit: line editing and history), pipes, files and /dev/null.
enum LineReader {
    /// Called on the event loop with each line, or nil at end of input.
    typealias Handler = @Sendable (String?) -> ReplSession.Prompt

    private static let historyPath: String? = getenv("HOME").map { String(cString: $0) + "/.nodemcu_host_history" }
    private static let isTerminal = isatty(0) != 0

    static func start(on loop: EventLoop, handler: @escaping Handler) {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        pool.submit { _ in
            if isTerminal, let historyPath {
                using_history()
                _ = read_history(historyPath)
            }
            var prompt = ReplSession.Prompt.primary
            while let line = readLine(prompt: prompt) {
                prompt = (try? loop.submit { handler(line) }.wait()) ?? .primary
            }
            if isTerminal { Console.out("\n") }
            _ = try? loop.submit { handler(nil) }.wait()
        }
    }

    /// libedit's readline on a terminal (it prints the prompt); plain reads,
    /// without prompts, otherwise.
    private static func readLine(prompt: ReplSession.Prompt) -> String? {
        if isTerminal {
            guard let raw = readline(prompt.text) else { return nil }
            defer { free(raw) }
            let line = String(cString: raw)
            if !line.isEmpty { add_history(raw) }
            return line
        }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = Glibc.read(0, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }

    static func saveHistory() {
        if isTerminal, let historyPath { _ = write_history(historyPath) }
    }
}
