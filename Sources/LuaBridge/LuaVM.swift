import CLua
import CLuaShim

/// Owns a `lua_State`. Close it explicitly before whatever its Swift functions
/// reach goes away (bridge rule 7): `close()` runs every pending `__gc`.
public final class LuaVM {
    public let state: LuaState
    public private(set) var isClosed = false

    /// `compactHeap`: the state's blocks come from mimalloc when `compactHeapSupport` is
    /// `.mimalloc` (a fleet: a state is ~2 000 small blocks, and glibc's per-block header
    /// and 16-byte rounding cost ~6 KB per device, bench/NOTES.md session 8).
    public init(compactHeap: Bool = false) {
        _ = LuaDispatch.installed
        guard let L = nm_newstate(compactHeap ? 1 : 0) else {
            fatalError("nodemcu-host: cannot create a Lua state (out of memory)")
        }
        state = LuaState(L)
    }

    /// Where the blocks of new states come from.
    public enum BlockAllocator {
        case mimalloc
        /// malloc: libmimalloc.so.2 is not installed.
        case mallocLibraryMissing
        /// malloc: a sanitizer build, which must see every block.
        case mallocSanitizerBuild
    }

    /// Where the blocks of a `compactHeap` state come from (loads libmimalloc.so.2 once).
    public static var compactHeapSupport: BlockAllocator {
        switch nm_compact_heaps() {
        case 1: return .mimalloc
        case 0: return .mallocLibraryMissing
        default: return .mallocSanitizerBuild
        }
    }

    /// Opens the standard libraries (protected: never raises into Swift).
    public func openStandardLibraries() {
        let lua = state
        lua_pushcclosure(lua.L, nm_openlibs_function(), 0)
        _ = lua.pcall(arguments: 0, results: 0)
    }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        nm_close(state.L)
    }

    deinit {
        close()
    }
}
