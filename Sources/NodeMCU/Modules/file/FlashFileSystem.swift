#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The simulated SPIFFS flash file system: one host folder (the `--fs` root, the
/// process's working directory once the launcher has changed into it) holding flat
/// names of at most 31 bytes. No Lua here.
///
/// Sandbox: nothing outside the folder is ever touched. Names with a leading `/`
/// (another drive; a `/FLASH/` prefix is stripped first), `.`/`..` components or NUL
/// bytes are refused, and so is a symlink whose target is not a file directly in the
/// folder. Any other `/` is an ordinary character of a flat name: stored on disk as
/// `%2F` (and `%` as `%25`), so a flash name never becomes a host path.
final class FlashFileSystem {
    /// SPIFFS object names: 31 bytes (FS_OBJ_NAME_LEN).
    static let maxNameLength = 31
    /// SPIFFS's limit on open files.
    static let maxOpenFiles = 4
    /// `file.fsinfo()`'s total (more-modules §0.3 board constant).
    static let defaultTotal = 3_000_000
    /// `file.fscfg()` (more-modules §0.3 board constants).
    static let physicalAddress = 1_048_576
    static let physicalSize = 3_129_344

    let root: String
    let total: Int
    var openFiles = 0

    init(root: String, total: Int = FlashFileSystem.defaultTotal) {
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        if realpath(root, &resolved) != nil {
            self.root = Self.string(resolved)
        } else {
            self.root = root
        }
        self.total = total
    }

    /// A NUL-terminated C string buffer as a String.
    static func string(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A name as scripts give it.
    enum Name {
        /// Longer than 31 bytes: argerror `filename invalid`.
        case invalid
        /// Outside the flash (another drive, a path, a symlink out): the device's "not found".
        case refused
        /// The host path of the flat name.
        case path(String)
    }

    func resolve(_ name: [UInt8]) -> Name {
        if name.count > Self.maxNameLength { return .invalid }
        var flat = name[...]
        let prefix = Array("/FLASH/".utf8)
        if flat.starts(with: prefix) { flat = flat.dropFirst(prefix.count) }
        if flat.isEmpty || flat.first == UInt8(ascii: "/") || flat.contains(0) { return .refused }
        let components = flat.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        if components.contains(where: { $0.elementsEqual("..".utf8) || $0.elementsEqual(".".utf8) }) { return .refused }
        var encoded: [UInt8] = []
        for c in flat {
            switch c {
            case UInt8(ascii: "/"): encoded += Array("%2F".utf8)
            case UInt8(ascii: "%"): encoded += Array("%25".utf8)
            default: encoded.append(c)
            }
        }
        let path = root + "/" + String(decoding: encoded, as: UTF8.self)
        guard String(decoding: encoded, as: UTF8.self).utf8.elementsEqual(encoded) else { return .refused }
        return isInside(path) ? .path(path) : .refused
    }

    /// The flash name of a host file name (`%2F` → `/`, `%25` → `%`).
    static func flashName(_ fileName: String) -> [UInt8] {
        let bytes = Array(fileName.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count {
                let code = bytes[(i + 1)...(i + 2)]
                if code.elementsEqual("2F".utf8) { out.append(UInt8(ascii: "/")); i += 3; continue }
                if code.elementsEqual("25".utf8) { out.append(UInt8(ascii: "%")); i += 3; continue }
            }
            out.append(bytes[i])
            i += 1
        }
        return out
    }

    /// False for a symlink whose target is not a regular file directly in the folder.
    func isInside(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return true }  // does not exist: creating it is fine
        if info.st_mode & S_IFMT != S_IFLNK { return info.st_mode & S_IFMT == S_IFREG }
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard realpath(path, &resolved) != nil else { return false }
        let target = Self.string(resolved)
        guard target.hasPrefix(root + "/"), !target.dropFirst(root.count + 1).contains("/") else { return false }
        var targetInfo = stat()
        return stat(target, &targetInfo) == 0 && targetInfo.st_mode & S_IFMT == S_IFREG
    }

    /// Size of an existing regular file (following an in-folder symlink), or nil.
    func size(_ path: String) -> Int? {
        var info = stat()
        guard isInside(path), stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return Int(info.st_size)
    }

    /// Host file names (not flash names) of the regular files in the folder.
    func fileNames() -> [String] {
        guard let directory = opendir(root) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            if size(root + "/" + name) != nil { names.append(name) }
        }
        return names.sorted()
    }

    /// Sum of the file sizes.
    var used: Int { fileNames().reduce(0) { $0 + (size(root + "/" + $1) ?? 0) } }

    /// Removes every file (and in-folder symlink) of the folder; nothing else.
    func format() {
        for name in fileNames() { _ = unlink(root + "/" + name) }
    }
}
