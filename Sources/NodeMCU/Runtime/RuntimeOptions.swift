import HostNet
import NIOCore

/// Everything the command line decides about a run.
public struct RuntimeOptions: Sendable {
    public var profile: FirmwareProfile = .v2_2
    public var onError: ErrorPolicy = .exit
    /// Script arguments, as `lua.c`'s `arg` table: `arg[0]` is the script.
    public var scriptName: String = "stdin"
    public var scriptArguments: [String] = []
    /// Host options for outgoing connections and the MQTT clients.
    public var remap = AddressRemap()
    public var maxInflight = 1
    /// `--busy-poll`: while a broker streams messages in, the loop stays awake this long
    /// after a read instead of sleeping (`ReadBusyPoll.window`); zero (default): it always sleeps.
    public var busyPollWindow: TimeAmount = .zero
    /// `--pcap FILE`: every connection is captured to this pcap file.
    public var pcapPath: String?
    /// Servers listen on all interfaces instead of 127.0.0.1 only.
    public var expose = false
    /// `--cafile`: CA certificates (PEM) trusted by every TLS connection as well.
    public var extraCAPEM: [UInt8]?
    public var trace = false
    /// `node.chipid()`: a stable per-machine number (see `ChipID`).
    public var chipID: Int = ChipID.host
    /// Give up restarting after this many restarts within `restartWindowSeconds`.
    public var maxRestarts = 5
    public var restartWindowSeconds: Int64 = 10
    /// The flash folder of this device (fleet mode: `<fs>/devices/<index>`); nil: the
    /// working directory (the `--fs` root the launcher changed into).
    public var fsRoot: String?
    /// Fleet mode: the shared folder a file missing from `fsRoot` is read from
    /// (copy-on-write; see `FlashFileSystem`).
    public var fsShared: String?
    /// `--modules`: install only these firmware modules (a firmware build's module list);
    /// nil: every module the profile has.
    public var modules: Set<String>?
    /// Prefixed to this runtime's own stderr diagnostics (fleet mode: `[17] `).
    public var diagnosticPrefix = ""

    public init() {}
}
