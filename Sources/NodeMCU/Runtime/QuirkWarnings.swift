import CLua
import LuaBridge

/// Host warnings for profile quirks that silently change what a call probably
/// meant (spec §0.3): one stderr line per call site per run.
public struct QuirkWarnings {
    private var seen: Set<String> = []
    /// Prefixed to each warning (fleet mode: the device index, `[17] `).
    public var prefix = ""

    /// Warns about the Lua code that called the running module function.
    /// `message` follows the call site, e.g. "m:connect: argument 3 (false) …".
    public mutating func warn(_ message: String, on lua: LuaState) {
        let site = lua.callSite()
        guard seen.insert(site).inserted else { return }
        Console.diagnostic(prefix + "warning: \(site) \(message)")
    }
}

extension LuaState {
    /// "chunk:line:" of the Lua code that called the running function.
    public func callSite() -> String {
        luaL_where(L, 1)
        defer { pop() }
        return (string(at: -1) ?? "?:").trimmingCharacters(in: " ")
    }
}
