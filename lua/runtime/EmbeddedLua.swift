/// Lua sources compiled into the binary, so `nodemcu-host` is one self-contained file.
public enum EmbeddedLua {
    /// The Lua 5.1-era globals NodeMCU scripts rely on (behaviour spec §6.2).
    public static var prelude: [UInt8] { PackageResources.prelude_lua }
}
