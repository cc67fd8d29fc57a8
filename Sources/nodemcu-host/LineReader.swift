import CEditLine
import NIOCore
import NIOPosix
import NodeMCU

#if canImport(Glibc)
import Glibc
#endif

/// Reads standard input (UART 0's receive side) on its own thread and posts what it
/// reads to the event loop, waiting for the prompt that comes next (DESIGN.md, REPL).
/// Works with terminals (libedit: line editing and history; each line is posted with
/// its newline), pipes, files and /dev/null (each `read()` batch is posted as it is).
enum LineReader {
    /// Called on the event loop with each line or batch, or nil at end of input.
    typealias Handler = @Sendable ([UInt8]?) -> ReplSession.Prompt

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
            while let input = read(prompt: prompt) {
                prompt = (try? loop.submit { handler(input) }.wait()) ?? .primary
            }
            if isTerminal { Console.out("\n") }
            _ = try? loop.submit { handler(nil) }.wait()
        }
    }

    /// libedit's readline on a terminal (it prints the prompt; the line comes back with
    /// its newline); one plain `read()`, without prompts, otherwise. nil at end of input.
    private static func read(prompt: ReplSession.Prompt) -> [UInt8]? {
        if isTerminal {
            guard let raw = readline(prompt.text) else { return nil }
            defer { free(raw) }
            let length = strlen(raw)
            if length > 0 { add_history(raw) }
            return raw.withMemoryRebound(to: UInt8.self, capacity: length) {
                Array(UnsafeBufferPointer(start: $0, count: length))
            } + [UInt8(ascii: "\n")]
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = Glibc.read(0, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            return Array(buffer.prefix(n))
        }
    }

    static func saveHistory() {
        if isTerminal, let historyPath { _ = write_history(historyPath) }
    }
}
