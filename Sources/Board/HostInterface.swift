import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// The host's own IPv4 configuration, which the simulated station reports as its DHCP
/// lease (main spec §5.4: `getip` from the host's interface).
enum HostInterface {
    /// The first up, non-loopback IPv4 interface with its netmask, and the default
    /// gateway from /proc/net/route; 127.0.0.1/255.0.0.0 with gateway 0.0.0.0 when the
    /// host has none.
    static func current() -> WiFiRadio.Address {
        let devices = (try? System.enumerateDevices()) ?? []
        for device in devices {
            guard case .v4(let address)? = device.address, !address.host.hasPrefix("127.") else { continue }
            let ip = address.host
            var netmask = "255.255.255.0"
            if case .v4(let mask)? = device.netmask { netmask = mask.host }
            return WiFiRadio.Address(ip: ip, netmask: netmask, gateway: defaultGateway() ?? "0.0.0.0")
        }
        return WiFiRadio.Address(ip: "127.0.0.1", netmask: "255.0.0.0", gateway: "0.0.0.0")
    }

    /// The default route's gateway (Linux).
    static func defaultGateway() -> String? {
        guard let file = fopen("/proc/net/route", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 512)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count > 2, fields[1] == "00000000", let gateway = UInt32(fields[2], radix: 16), gateway != 0
            else { continue }
            // Little-endian hex of the address.
            return [0, 8, 16, 24].map { String((gateway >> UInt32($0)) & 0xFF) }.joined(separator: ".")
        }
        return nil
    }
}
