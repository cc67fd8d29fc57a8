/// The simulated device's flash and SDK settings that survive a simulated reboot
/// (more-modules §0.3): flash chip values, CPU frequency, the partition table and the
/// 3.0 startup record. Host constants where the device reads hardware.
public final class DeviceSettings {
    public static let flashID = 0x1640EF
    public var flashSize = 4_194_304
    public static let flashMode = 0
    public static let flashSpeed = 40_000_000
    public var cpuFrequency = 80

    public struct PartitionTable: Sendable, Equatable {
        public var lfsAddress = 0
        public var lfsSize = 0
        public var spiffsAddress = 1_048_576
        public var spiffsSize = 3_129_344
    }
    public var partitions = PartitionTable()

    /// `node.startup()` (3.0): stored only; the host runs its script on every boot.
    public struct Startup: Sendable {
        public var banner = true
        public var delayMount = false
        public var frequency = 80
        public var command: [UInt8]?
    }
    public var startup = Startup()

    public init() {}
}
