#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CLuaShim
import LuaBridge

/// The chunk loaders' view of the flash: `dofile`, `loadfile`, `require` and
/// `node.compile` (CLuaShim's bytecode.c) look file names up here, so they see what the
/// `file` module sees — the sandbox (no name outside the folder) and, in fleet mode, the
/// device's own folder before the shared one (a device that writes `app.lua` and then
/// `dofile`s it runs its own copy; `node.compile` writes the `.lc` into the device's folder).
extension FlashFileSystem {
    /// Installs the resolver (CLuaShim's `NM_FLASHPATH_KEY`) in `lua`'s registry.
    func installLoaderPaths(in lua: LuaState) {
        lua.push(function: { [self] lua throws(LuaError) in
            guard let name = lua.bytes(at: 1), let path = loaderPath(name, forWriting: lua.boolean(at: 2)) else {
                lua.pushNil()
                return 1
            }
            lua.push(path)
            return 1
        })
        lua.setField(NM_FLASHPATH_KEY, in: nm_registryindex())
    }

    /// The host file for a loader's file name, or nil when the name is not on the flash
    /// (too long, another drive, `..`): the loader then reports "cannot open". `./x.lua`
    /// (package.path's template) is `x.lua`. A name with `/` that is not a flat flash file
    /// may be a project folder's real subfolder (`lib/util.lua`), read as such when it
    /// stays inside the folder.
    func loaderPath(_ name: [UInt8], forWriting: Bool) -> String? {
        var flat = name[...]
        while flat.starts(with: "./".utf8) { flat = flat.dropFirst(2) }
        guard case .path(let path) = resolve(Array(flat)) else { return nil }
        if forWriting || size(path) != nil || !flat.contains(UInt8(ascii: "/")) { return readPath(path) }
        let relative = String(decoding: flat, as: UTF8.self)
        for folder in [root] + (shared.map { [$0] } ?? []) where isFile(folder + "/" + relative, below: folder) {
            return folder + "/" + relative
        }
        return path
    }

    /// Whether `path` is a regular file whose real path is under `folder`.
    private func isFile(_ path: String, below folder: String) -> Bool {
        var resolved = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard realpath(path, &resolved) != nil, Self.string(resolved).hasPrefix(folder + "/") else { return false }
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }
}
