#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reading a whole host file without Foundation (start-up time and memory matter): the
/// launcher's script, board and scenario files, `crypto.fhash`'s input.
public enum HostFile {
    /// The file's bytes, or nil if it cannot be opened or read.
    public static func read(_ path: String) -> [UInt8]? {
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
}
