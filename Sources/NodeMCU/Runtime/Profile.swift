/// The firmware whose API contract the host reproduces (behaviour spec §0.1).
public enum FirmwareProfile: String, Sendable, CaseIterable {
    /// Tag 2.2.1-master_20180915, the firmware of the seed document (default).
    case v2_2 = "2.2"
    /// Tag 3.0.0-release_20240225.
    case v3_0 = "3.0"

    /// `node.info()` version triple.
    var version: (Int, Int, Int) { self == .v2_2 ? (2, 2, 1) : (3, 0, 0) }
}

/// What the host does after a Lua error it reported (spec §0.6).
public enum ErrorPolicy: String, Sendable, CaseIterable {
    /// End the process with status 1 (default for a script).
    case exit
    /// Re-run the script in a fresh Lua state, like a device reboot.
    case restart
    /// Abandon the failed callback and go on (default in the REPL).
    case `continue`
}
