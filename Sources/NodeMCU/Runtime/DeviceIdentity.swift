/// Who a device of a fleet is (`nodemcu-host --devices N`): its chip id, station MAC
/// and default MQTT client id, all derived from the base chip id and the device index.
///
/// - chip id: `(base + index) & 0xFFFFFF` — 24 bits, as on the ESP8266. `base` is
///   `ChipID.host` (from /etc/machine-id, or `NODEMCU_CHIPID`); device 0 has the chip id
///   a single run has. Indices past 2^24 wrap around.
/// - station MAC: Espressif's OUI `5c:cf:7f` followed by the chip id's three bytes, as
///   the ESP8266's factory MAC is built.
/// - default MQTT client id: `NodeMCU_<chip id in lower-case hex>`, as for one device.
public struct DeviceIdentity: Sendable, Equatable {
    public let index: Int
    public let chipID: Int

    public init(index: Int, baseChipID: Int = ChipID.host) {
        self.index = index
        self.chipID = (baseChipID &+ index) & 0xFF_FFFF
    }

    public var mac: String {
        let bytes = [0x5C, 0xCF, 0x7F, (chipID >> 16) & 0xFF, (chipID >> 8) & 0xFF, chipID & 0xFF]
        return bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }

    public var defaultClientID: String { "NodeMCU_" + String(chipID, radix: 16) }
}
