/// The ESP8266's one ADC channel (more-modules spec §0.3, §3): the level on the TOUT
/// pin (0…1024), the supply voltage, and init-data byte 107 in flash, which decides at
/// boot whether the ADC reads TOUT (0x00) or VDD33 (0xFF).
public final class ADCInput {
    /// The reading on TOUT, 0…1024 (default 0). Values outside are clamped on read.
    public var input = 0
    /// The supply voltage in mV (default 3300).
    public var vdd33 = 3300
    /// Init-data byte 107 as stored in flash (default 0x00: ADC mode). Survives reboots;
    /// a change takes effect at the next boot.
    public var initByte: UInt8 = 0x00
    /// The mode the ADC runs in this boot (byte 107 at boot time).
    public private(set) var readsVDD33 = false

    init() {}

    /// What `adc.read(0)` returns: 0…1024 in ADC mode, 65535 in VDD33 mode.
    public func read() -> Int {
        readsVDD33 ? 65535 : min(max(input, 0), 1024)
    }

    /// What `adc.readvdd33()` returns: the supply voltage in VDD33 mode, 65535 in ADC mode.
    public func readVDD33() -> Int {
        readsVDD33 ? vdd33 : 65535
    }

    func reboot() { readsVDD33 = initByte == 0xFF }
}
