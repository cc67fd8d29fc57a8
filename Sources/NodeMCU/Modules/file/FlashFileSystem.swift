#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The simulated SPIFFS flash file system: one host folder (`RuntimeOptions.fsRoot`, else
/// the `--fs` root, the process's working directory once the launcher has changed into
/// it) holding flat names of at most 31 bytes. No Lua here.
///
/// Copy-on-write (fleet mode): with a `shared` folder, a name missing from `root` is read
/// from `shared`; writing it (modes `r+`, `a`, `a+`, `rename`) first copies it into `root`;
/// writes, removes and `format` only ever change `root`. Removing a file that exists only in
/// `shared` leaves the shared one visible.
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
    /// The read-only folder a name missing from `root` is read from (fleet mode), or nil.
    let shared: String?
    let total: Int
    var openFiles = 0

    init(root: String, shared: String? = nil, total: Int = FlashFileSystem.defaultTotal) {
        self.root = Self.realPath(root)
        self.shared = shared.map(Self.realPath).flatMap { $0 == Self.realPath(root) ? nil : $0 }
        self.total = total
    }

    /// The file system of `runtime`: its `fsRoot` (and `fsShared`), else the working directory.
    convenience init(for options: RuntimeOptions) {
        if let root = options.fsRoot {
            self.init(root: root, shared: options.fsShared)
        } else {
            var cwd = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            self.init(root: getcwd(&cwd, cwd.count) != nil ? Self.string(cwd) : ".")
        }
    }

    static func realPath(_ path: String) -> String {
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        return realpath(path, &resolved) != nil ? string(resolved) : path
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
    func isInside(_ path: String) -> Bool { isInside(path, folder: root) }

    func isInside(_ path: String, folder root: String) -> Bool {
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

    /// Size of an existing regular file (following an in-folder symlink), or nil; for a
    /// path in `root` that does not exist there, the size of the shared copy.
    func size(_ path: String) -> Int? {
        if let size = localSize(path) { return size }
        if let shared = sharedCopy(of: path) { return localSize(shared, folder: self.shared!) }
        return nil
    }

    private func localSize(_ path: String, folder: String? = nil) -> Int? {
        var info = stat()
        guard isInside(path, folder: folder ?? root), stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        return Int(info.st_size)
    }

    /// The shared folder's file for `path` (a path in `root` missing there), if it exists.
    func sharedCopy(of path: String) -> String? {
        guard let shared, path.hasPrefix(root + "/"), localSize(path) == nil else { return nil }
        let candidate = shared + path.dropFirst(root.count)
        return localSize(candidate, folder: shared) != nil ? candidate : nil
    }

    /// Where to read `path` from: itself, or its shared copy when only that exists.
    func readPath(_ path: String) -> String { sharedCopy(of: path) ?? path }

    /// The whole host file at `path` (a path from `resolve`/`readPath`), or nil if it
    /// cannot be read.
    func contents(of path: String) -> [UInt8]? { HostFile.read(path) }

    /// Copies the shared copy of `path` into `root` before it is changed (copy-on-write).
    /// False if the copy failed.
    @discardableResult
    func materialize(_ path: String) -> Bool {
        guard let source = sharedCopy(of: path) else { return true }
        guard let input = fopen(source, "rb") else { return false }
        defer { fclose(input) }
        guard let output = fopen(path, "wb") else { return false }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var ok = true
        while true {
            let n = fread(&buffer, 1, buffer.count, input)
            if n > 0 && fwrite(buffer, 1, n, output) != n { ok = false; break }
            if n < buffer.count { break }
        }
        return fclose(output) == 0 && ok
    }

    /// Host file names (not flash names) of the regular files in the folder (and in the
    /// shared folder, in fleet mode).
    func fileNames() -> [String] {
        var names = Set(fileNames(in: root))
        if let shared {
            for name in fileNames(in: shared) where localSize(shared + "/" + name, folder: shared) != nil { names.insert(name) }
        }
        return names.sorted()
    }

    private func fileNames(in root: String) -> [String] {
        guard let directory = opendir(root) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            if localSize(root + "/" + name, folder: root) != nil { names.append(name) }
        }
        return names.sorted()
    }

    /// Sum of the file sizes.
    var used: Int { fileNames().reduce(0) { $0 + (size(root + "/" + $1) ?? 0) } }

    /// Removes every file (and in-folder symlink) of the folder; nothing else (never the
    /// shared folder's).
    func format() {
        for name in fileNames(in: root) { _ = unlink(root + "/" + name) }
    }
}
