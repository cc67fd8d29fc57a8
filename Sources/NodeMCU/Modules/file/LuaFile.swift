#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import LuaBridge

/// Lua: a `file.obj` (`fd:read`, `readline`, `write`, `writeline`, `seek`, `flush`,
/// `close`), as the firmware's app/modules/file.c file objects.
///
/// An open file keeps nothing alive (it is never held): the script's reference does,
/// and `__gc` closes it. Writes go straight to the host file (no buffer), so they are
/// on disk when the call returns and survive a simulated reboot.
final class LuaFile: LuaHandle {
    private let fileSystem: FlashFileSystem
    private let path: String
    private var descriptor: Int32
    private let appends: Bool
    private let writable: Bool

    init(runtime: Runtime, fileSystem: FlashFileSystem, path: String, descriptor: Int32, appends: Bool,
         writable: Bool) {
        self.fileSystem = fileSystem
        self.path = path
        self.descriptor = descriptor
        self.appends = appends
        self.writable = writable
        super.init(runtime: runtime, callbackSlots: 0)
        fileSystem.openFiles += 1
    }

    var isOpen: Bool { descriptor >= 0 }

    func close() {
        guard descriptor >= 0 else { return }
        _ = posixClose(descriptor)
        descriptor = -1
        fileSystem.openFiles -= 1
    }

    override func abortForReboot() {
        close()
        super.abortForReboot()
    }

    override func dispose(on lua: LuaState) {
        close()
        super.dispose(on: lua)
    }

    /// Up to `count` bytes; nil at end of file (or on an error).
    func read(_ count: Int) -> [UInt8]? {
        guard count > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: count)
        let got = buffer.withUnsafeMutableBytes { posixRead(descriptor, $0.baseAddress, count) }
        guard got > 0 else { return nil }
        return Array(buffer.prefix(got))
    }

    /// Up to and including `terminator`, at most `limit` bytes; nil at end of file.
    /// Reads a block and seeks back past the terminator, as the firmware does.
    func read(until terminator: UInt8, limit: Int) -> [UInt8]? {
        guard let block = read(limit) else { return nil }
        guard let end = block.firstIndex(of: terminator) else { return block }
        let keep = end + 1
        if keep < block.count { _ = lseek(descriptor, off_t(keep - block.count), SEEK_CUR) }
        return Array(block.prefix(keep))
    }

    /// Writes all bytes; false on failure or when the flash would be full.
    ///
    /// As SPIFFS_write: a file opened read-only refuses every write, even an empty one;
    /// in append mode every write, even an empty one, first moves the position to the
    /// end of the file (so `file.open(n, "a"); file.write(""); file.seek()` is the size).
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard writable else { return false }
        if appends { _ = lseek(descriptor, 0, SEEK_END) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return false }
        let current = Int(info.st_size)
        let position = appends ? current : Int(lseek(descriptor, 0, SEEK_CUR))
        let newSize = max(current, position + bytes.count)
        if fileSystem.used - current + newSize > fileSystem.total { return false }
        var offset = 0
        while offset < bytes.count {
            let written = posixWrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    /// The new position, or nil (e.g. it would be negative).
    func seek(whence: Int32, offset: Int) -> Int? {
        let result = lseek(descriptor, off_t(offset), whence)
        return result < 0 ? nil : Int(result)
    }

    func flush() -> Bool { fsync(descriptor) == 0 }
}

// The methods above shadow the C functions of the same names.
private func posixClose(_ fd: Int32) -> Int32 { close(fd) }
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(fd, buffer, count) }
