#if canImport(Glibc)
import Glibc
#endif

/// The host's stand-in for the ESP8266 chip id: a stable per-machine 24-bit
/// number derived from /etc/machine-id (or the host name), so default client ids
/// (`NodeMCU_<hex>`) stay the same across runs on one machine. Override with
/// the environment variable `NODEMCU_CHIPID` (decimal or 0x-hex).
public enum ChipID {
    public static let host: Int = {
        if let text = getenv("NODEMCU_CHIPID").map({ String(cString: $0) }) {
            if text.hasPrefix("0x"), let value = Int(text.dropFirst(2), radix: 16) { return value }
            if let value = Int(text) { return value }
        }
        var seed = readMachineID()
        if seed.isEmpty {
            var name = [CChar](repeating: 0, count: 256)
            gethostname(&name, name.count)
            seed = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        // FNV-1a, folded to the 24 bits a real chip id has.
        var hash: UInt32 = 2_166_136_261
        for byte in seed.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return Int((hash >> 8) ^ (hash & 0xFF)) & 0xFF_FFFF
    }()

    private static func readMachineID() -> String {
        guard let file = fopen("/etc/machine-id", "r") else { return "" }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 128)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return "" }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }.trimmingCharacters(in: " \n")
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let c = s.first, chars.contains(c) { s.removeFirst() }
        while let c = s.last, chars.contains(c) { s.removeLast() }
        return String(s)
    }
}
