#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import LuaBridge

/// Lua: the `file` module (behaviour spec §5.2, more-modules §2), both profiles;
/// `getcontents`/`putcontents` in 3.0 only. No `mount`, `chdir` or `vol` (FatFS builds
/// only: nil in both default builds).
///
/// Follows the firmware's app/modules/file.c and docs/modules/file.md over SPIFFS,
/// simulated by `FlashFileSystem` (the `--fs` folder, flat names of at most 31 bytes,
/// 4 open files, `fsinfo` total 3000000 bytes). The basic model works on the "current
/// file": the last one opened; closing any file drops it (`open a file first` after).
/// Every basic-model function also takes a file object as argument 1.
public final class FileModule: LuaModule {
    public static let name = "file"

    private let runtime: Runtime
    private let fileSystem: FlashFileSystem
    private let fileType: LuaObjectType<LuaFile>
    /// The current file's userdata (a registry reference, as the firmware keeps it).
    private var currentRef: LuaRef?
    private weak var current: LuaFile?
    private var rtcCallback: LuaRef?

    public init(runtime: Runtime) {
        self.runtime = runtime
        fileSystem = FlashFileSystem(for: runtime.options)
        var methods: [(String, LuaObjectType<LuaFile>.Method)] = []
        for (name, operation) in FileModule.operations {
            methods.append((name, { file, lua throws(LuaError) in
                guard file.isOpen else { throw .message("open a file first") }
                return try operation(file, lua, 2)
            }))
        }
        fileType = LuaObjectType(name: "file.obj", in: runtime.lua, methods: methods,
                                 finalize: { lua, file in file.dispose(on: lua) })
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("open") { [unowned self] lua throws(LuaError) in try open(lua) }
        for (name, operation) in Self.operations {
            table.function(name) { [unowned self] lua throws(LuaError) in try basic(lua, name: name, operation) }
        }
        table.function("exists") { [unowned self] lua throws(LuaError) in try exists(lua) }
        table.function("list") { [unowned self] lua throws(LuaError) in try list(lua) }
        table.function("remove") { [unowned self] lua throws(LuaError) in try remove(lua) }
        table.function("rename") { [unowned self] lua throws(LuaError) in try rename(lua) }
        table.function("stat") { [unowned self] lua throws(LuaError) in try stat(lua) }
        table.function("fsinfo") { [unowned self] lua throws(LuaError) in fsinfo(lua) }
        table.function("fscfg") { lua throws(LuaError) in Self.fscfg(lua) }
        table.function("format") { [unowned self] lua throws(LuaError) in format(lua) }
        table.function("on") { [unowned self] lua throws(LuaError) in try on(lua) }
        if runtime.profile == .v3_0 {
            table.function("getcontents") { [unowned self] lua throws(LuaError) in try getcontents(lua) }
            table.function("putcontents") { [unowned self] lua throws(LuaError) in try putcontents(lua) }
        }
    }

    // MARK: Names

    private func path(_ lua: LuaState, _ index: Int32) throws(LuaError) -> String? {
        switch fileSystem.resolve(try lua.checkBytes(index)) {
        case .invalid: throw .argument(index, "filename invalid")
        case .refused: return nil
        case .path(let path): return path
        }
    }

    // MARK: Opening and the current file

    /// Lua: file.open(name[, mode]) — a file object (also the current file), or nil.
    private func open(_ lua: LuaState) throws(LuaError) -> Int32 {
        let target = try path(lua, 1)
        let mode = lua.isNoneOrNil(2) ? "r" : try lua.checkString(2)
        guard let target, fileSystem.openFiles < FlashFileSystem.maxOpenFiles else {
            lua.pushNil()
            return 1
        }
        let flags: Int32
        switch mode {
        case "w": flags = O_WRONLY | O_CREAT | O_TRUNC
        case "a": flags = O_WRONLY | O_CREAT | O_APPEND
        case "r+": flags = O_RDWR
        case "w+": flags = O_RDWR | O_CREAT | O_TRUNC
        case "a+": flags = O_RDWR | O_CREAT | O_APPEND
        default: flags = O_RDONLY  // "r", and any unknown mode opens read-only
        }
        // Fleet mode: read the shared copy in place; copy it before changing it.
        if flags & O_TRUNC == 0 && flags & (O_WRONLY | O_RDWR) != 0 { fileSystem.materialize(target) }
        let opened = flags & (O_WRONLY | O_RDWR) == 0 ? fileSystem.readPath(target) : target
        let descriptor = Glibc.open(opened, flags | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            lua.pushNil()
            return 1
        }
        let file = LuaFile(runtime: runtime, fileSystem: fileSystem, path: target, descriptor: descriptor,
                           appends: flags & O_APPEND != 0, writable: flags & O_ACCMODE != O_RDONLY)
        fileType.push(file, on: lua)
        if let currentRef { lua.unref(currentRef) }
        currentRef = lua.ref(at: -1)
        current = file
        return 1
    }

    /// Drops the current-file reference (any close does, as on the device).
    private func dropCurrent(_ lua: LuaState) {
        if let currentRef { lua.unref(currentRef) }
        currentRef = nil
        current = nil
    }

    /// A basic-model call: on the file object given as argument 1, else the current file.
    private func basic(_ lua: LuaState, name: String, _ operation: Operation) throws(LuaError) -> Int32 {
        if let file = fileType.object(at: 1, on: lua) {
            guard file.isOpen else { throw .message("open a file first") }
            if name == "close" { dropCurrent(lua) }
            return try operation(file, lua, 2)
        }
        guard let file = current, file.isOpen else {
            if name == "close" { return 0 }
            throw .message("open a file first")
        }
        if name == "close" { dropCurrent(lua) }
        return try operation(file, lua, 1)
    }

    // MARK: File operations (basic model and methods)

    /// An operation on an open file; arguments start at the given index.
    typealias Operation = (LuaFile, LuaState, Int32) throws(LuaError) -> Int32

    private static var operations: [(String, Operation)] { [
        ("close", { file, lua, _ throws(LuaError) in close(file, lua) }),
        ("read", { file, lua, first throws(LuaError) in try read(file, lua, first) }),
        ("readline", { file, lua, _ throws(LuaError) in readline(file, lua) }),
        ("write", { file, lua, first throws(LuaError) in try write(file, lua, first, newline: false) }),
        ("writeline", { file, lua, first throws(LuaError) in try write(file, lua, first, newline: true) }),
        ("seek", { file, lua, first throws(LuaError) in try seek(file, lua, first) }),
        ("flush", { file, lua, _ throws(LuaError) in flush(file, lua) }),
    ] }

    /// Lua: file.close(), fd:close()
    private static func close(_ file: LuaFile, _ lua: LuaState) -> Int32 {
        file.close()
        return 0
    }

    /// Lua: file.read([n_or_char]), fd:read([n_or_char]) — nil at end of file.
    private static func read(_ file: LuaFile, _ lua: LuaState, _ index: Int32) throws(LuaError) -> Int32 {
        var result: [UInt8]?
        switch lua.type(at: index) {
        case .number:
            let count = lua.integer(at: index) ?? 0
            if count <= 0 && file.runtime.profile == .v3_0 {
                result = []
            } else {
                result = file.read(count <= 0 ? 1024 : min(count, 1 << 24))
            }
        case .string:
            let text = lua.bytes(at: index) ?? []
            guard text.count == 1 else { throw .message("wrong arg range") }
            result = file.read(until: text[0], limit: 1024)
        default:
            result = file.read(1024)
        }
        guard let result else { lua.pushNil(); return 1 }
        lua.push(result)
        return 1
    }

    /// Lua: file.readline(), fd:readline() — up to and including "\n" (at most 1024 bytes).
    private static func readline(_ file: LuaFile, _ lua: LuaState) -> Int32 {
        guard let line = file.read(until: 0x0A, limit: 1024) else { lua.pushNil(); return 1 }
        lua.push(line)
        return 1
    }

    /// Lua: file.write(s), file.writeline(s), fd:write(s), fd:writeline(s) — true or nil.
    private static func write(_ file: LuaFile, _ lua: LuaState, _ index: Int32, newline: Bool) throws(LuaError) -> Int32 {
        var bytes = try lua.checkBytes(index)
        if newline { bytes.append(0x0A) }
        let ok = bytes.withUnsafeBytes { file.write($0) }
        if ok { lua.push(true) } else { lua.pushNil() }
        return 1
    }

    /// Lua: file.seek([whence[, offset]]), fd:seek(…) — the new position, or nil.
    private static func seek(_ file: LuaFile, _ lua: LuaState, _ index: Int32) throws(LuaError) -> Int32 {
        let whence: Int32
        let option = lua.isNoneOrNil(index) ? "cur" : try lua.checkString(index)
        switch option {
        case "set": whence = SEEK_SET
        case "cur": whence = SEEK_CUR
        case "end": whence = SEEK_END
        default: throw .argument(index, "invalid option '\(option)'")
        }
        let offset = try lua.optionalInteger(index + 1, default: 0)
        guard let position = file.seek(whence: whence, offset: offset) else { lua.pushNil(); return 1 }
        lua.push(position)
        return 1
    }

    /// Lua: file.flush(), fd:flush() — true or nil.
    private static func flush(_ file: LuaFile, _ lua: LuaState) -> Int32 {
        if file.flush() { lua.push(true) } else { lua.pushNil() }
        return 1
    }

    // MARK: Whole files

    /// Lua: file.exists(name)
    private func exists(_ lua: LuaState) throws(LuaError) -> Int32 {
        let target = try path(lua, 1)
        lua.push(target.flatMap { fileSystem.size($0) } != nil)
        return 1
    }

    /// Lua: file.list([pattern]) — `{name = size}`, filtered with `string.match`.
    private func list(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pattern: [UInt8]? = lua.isNoneOrNil(1) ? nil : try lua.checkBytes(1)
        let names = fileSystem.fileNames()
        lua.newTable(fieldCapacity: Int32(names.count))
        let table = lua.top
        for name in names {
            let flash = FlashFileSystem.flashName(name)
            if let pattern {
                _ = lua.getGlobal("string")
                _ = lua.getField("match", in: -1)
                lua.remove(at: -2)
                lua.push(flash)
                lua.push(pattern)
                if case .error(let error) = lua.pcall(arguments: 2, results: 1) {
                    throw .message(error.message)
                }
                let matched = !lua.isNoneOrNil(-1)
                lua.pop()
                if !matched { continue }
            }
            lua.push(flash)
            lua.push(fileSystem.size(fileSystem.root + "/" + name) ?? 0)
            lua.rawSet(in: table)
        }
        return 1
    }

    /// Lua: file.remove(name)
    private func remove(_ lua: LuaState) throws(LuaError) -> Int32 {
        if let target = try path(lua, 1), fileSystem.size(target) != nil { _ = unlink(target) }
        return 0
    }

    /// Lua: file.rename(old, new) — false also when `new` exists.
    private func rename(_ lua: LuaState) throws(LuaError) -> Int32 {
        let old = try path(lua, 1)
        let new = try path(lua, 2)
        guard let old, let new, fileSystem.size(old) != nil else { lua.push(false); return 1 }
        var info = Glibc.stat()
        guard lstat(new, &info) != 0, fileSystem.materialize(old) else { lua.push(false); return 1 }
        lua.push(Glibc.rename(old, new) == 0)
        return 1
    }

    /// Lua: file.stat(name) — the SPIFFS table, or nil.
    private func stat(_ lua: LuaState) throws(LuaError) -> Int32 {
        let name = try lua.checkBytes(1)
        guard let target = try path(lua, 1), let size = fileSystem.size(target) else { lua.pushNil(); return 1 }
        lua.newTable(fieldCapacity: 8)
        lua.push(size); lua.setField("size", in: -2)
        lua.push(name); lua.setField("name", in: -2)
        for flag in ["is_dir", "is_rdonly", "is_hidden", "is_sys", "is_arch"] {
            lua.push(false); lua.setField(flag, in: -2)
        }
        lua.newTable(fieldCapacity: 6)
        for (field, value) in [("year", 1970), ("mon", 1), ("day", 1), ("hour", 0), ("min", 0), ("sec", 0)] {
            lua.push(value); lua.setField(field, in: -2)
        }
        lua.setField("time", in: -2)
        return 1
    }

    /// Lua: file.fsinfo() — remaining, used, total.
    private func fsinfo(_ lua: LuaState) -> Int32 {
        let used = fileSystem.used
        lua.push(max(0, fileSystem.total - used))
        lua.push(used)
        lua.push(fileSystem.total)
        return 3
    }

    /// Lua: file.fscfg() — phys_addr, phys_size.
    private static func fscfg(_ lua: LuaState) -> Int32 {
        lua.push(FlashFileSystem.physicalAddress)
        lua.push(FlashFileSystem.physicalSize)
        return 2
    }

    /// Lua: file.format() — closes the current file, erases every file, prints `format done.`.
    private func format(_ lua: LuaState) -> Int32 {
        current?.close()
        dropCurrent(lua)
        fileSystem.format()
        Array("format done.\n".utf8).withUnsafeBytes { runtime.consoleWrite($0) }
        return 0
    }

    /// Lua: file.on([event = "rtc"][, fn]) — the callback is kept but never called on SPIFFS.
    private func on(_ lua: LuaState) throws(LuaError) -> Int32 {
        let event = lua.isNoneOrNil(1) ? "rtc" : try lua.checkString(1)
        guard event == "rtc" else { throw .argument(1, "invalid option '\(event)'") }
        if !lua.isFunction(2) && !lua.isNoneOrNil(2) && runtime.profile == .v3_0 {
            throw .message("Callback should be function or nil")
        }
        if let rtcCallback { lua.unref(rtcCallback) }
        rtcCallback = lua.isFunction(2) ? lua.ref(at: 2) : nil
        return 0
    }

    /// Lua: file.getcontents(name) — 3.0: the contents, or nil.
    private func getcontents(_ lua: LuaState) throws(LuaError) -> Int32 {
        dropCurrent(lua)
        guard let target = try path(lua, 1), fileSystem.size(target) != nil else { lua.pushNil(); return 1 }
        let descriptor = Glibc.open(fileSystem.readPath(target), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { lua.pushNil(); return 1 }
        defer { _ = Glibc.close(descriptor) }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if got <= 0 { break }
            contents += buffer.prefix(got)
        }
        lua.push(contents)
        return 1
    }

    /// Lua: file.putcontents(name, s) — 3.0: true or nil (the file is opened with "w+").
    private func putcontents(_ lua: LuaState) throws(LuaError) -> Int32 {
        dropCurrent(lua)
        let target = try path(lua, 1)
        let data = try lua.checkBytes(2)
        guard let target, fileSystem.openFiles < FlashFileSystem.maxOpenFiles else { lua.pushNil(); return 1 }
        let existing = fileSystem.size(target) ?? 0
        guard fileSystem.used - existing + data.count <= fileSystem.total else { lua.pushNil(); return 1 }
        let descriptor = Glibc.open(target, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { lua.pushNil(); return 1 }
        defer { _ = Glibc.close(descriptor) }
        let written = data.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        if written == data.count { lua.push(true) } else { lua.pushNil() }
        return 1
    }
}
