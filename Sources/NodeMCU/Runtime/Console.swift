#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The device console (stdout) and the host's diagnostics (stderr).
///
/// Every call is one unbuffered `write(2)`, so stdout and stderr interleave in the
/// order they were produced, whether or not they are terminals.
public enum Console {
    /// Writes device-console bytes (print output, PANIC lines, tracebacks).
    public static func out(_ bytes: UnsafeRawBufferPointer) { write(fd: 1, bytes) }

    public static func out(_ text: String) {
        var text = text
        text.withUTF8 { out(UnsafeRawBufferPointer($0)) }
    }

    /// Writes one host diagnostic line to stderr, prefixed `nodemcu-host: `.
    public static func diagnostic(_ text: String) {
        var line = "nodemcu-host: " + text + "\n"
        line.withUTF8 { write(fd: 2, UnsafeRawBufferPointer($0)) }
    }

    /// Writes raw text to stderr (trace lines already carry their own prefix).
    public static func err(_ text: String) {
        var text = text
        text.withUTF8 { write(fd: 2, UnsafeRawBufferPointer($0)) }
    }

    private static func write(fd: Int32, _ bytes: UnsafeRawBufferPointer) {
        guard var pointer = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let n = Glibc.write(fd, pointer, remaining)
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return  // a closed pipe must not take the runtime down
            }
            pointer += n
            remaining -= n
        }
    }
}
