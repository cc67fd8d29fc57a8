import Board
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
    /// `--pcap FILE`: every TCP connection and UDP datagram is captured to this pcap file.
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
    /// `--speed N` / `--virtual-time`: how device time runs (`DeviceClock.Mode`).
    public var clockMode: DeviceClock.Mode = .real
    /// `--heap BYTES`: the script's heap budget (nil: unlimited; the peak is still counted).
    public var heapLimit: Int?
    /// `--strict`: report what runs here but not on the device (`PortabilityCheck`).
    public var strict = false
    /// `--board FILE`: the simulated board's starting state and scheduled changes.
    public var board = BoardSettings()
    /// The cap on bytes waiting in the device's outgoing MQTT queues, all clients together
    /// (see `MQTTQueueBudget`): past it `m:publish` returns false, as on the device when
    /// its heap cannot take another queue entry. The ESP8266 has about 40 KB of heap for
    /// everything, so a script that works on the device never comes near 1 MiB.
    public var mqttQueueLimit = 1 << 20
    /// A stderr warning when the queues first hold this many bytes.
    public var mqttQueueHighWater = 1 << 18
    /// The device watchdog: Lua that runs this long without returning to the event loop
    /// (or calling `tmr.wdclr()`) ends in a watchdog reset. nil: no watchdog.
    public var watchdogTimeout: TimeAmount? = Runtime.deviceWatchdogTimeout
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
    /// Fleet mode: the Lua state's blocks come from mimalloc (`LuaVM(compactHeap:)`).
    public var compactLuaHeap = false

    public init() {}
}
