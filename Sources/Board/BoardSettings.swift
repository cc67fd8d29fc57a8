import NIOCore

/// The `--board FILE` format: what the simulated board holds at power-on and what the
/// world does to it later. Lines of `key = value`; `#` starts a comment; blank lines are
/// ignored. Times are milliseconds of device time after start.
///
/// ```
/// gpio.4 = 1                    # the world drives pin 4 high (input reads 1)
/// gpio.4.at = 500:0, 700:1      # …then low at 500 ms and high again at 700 ms
/// adc = 512                     # TOUT reading, 0…1024
/// adc.vdd33 = 3300              # supply voltage in mV
/// adc.mode = vdd33              # init byte 107: adc (0x00) or vdd33 (0xFF)
/// dht.5 = DHT22 21.5 48.3       # model, °C, %RH (DHT11 DHT12 DHT21 DHT22 DHT33 DHT44)
/// dht.6 = raw 48 0 22 0 70      # the five bytes the sensor sends
/// rtc = 1600000000              # epoch seconds at start, or "now" (host clock); default unset
/// wifi.mode = station           # null, station, softap, stationap
/// wifi.ssid = HomeNet           # saved station configuration (default "nodemcu-host")
/// wifi.password = secret
/// wifi.autoconnect = true
/// wifi.outcome = success        # success, wrong_password, no_ap, fail
/// wifi.ip = 192.168.1.50        # DHCP lease (default: the host's interface)
/// wifi.netmask = 255.255.255.0
/// wifi.gateway = 192.168.1.1
/// wifi.mac = 5c:cf:7f:01:02:03
/// wifi.hostname = sensor-1
/// wifi.rssi = -61
/// wifi.bssid = a0:f3:c1:4d:2e:17
/// wifi.channel = 11
/// wifi.connect_ms = 100         # association time; wifi.dhcp_ms = 50
/// wifi.ap = HomeNet, a0:f3:c1:4d:2e:17, -61, 3, 11   # a scan result (repeatable):
///                               # ssid, bssid, rssi, authmode, channel[, password]
/// wifi.drop.at = 3000:200       # the link drops at 3000 ms, reason 200 (repeatable)
/// sntp = none                   # none, dns or no_answer: how sntp.sync ends
/// sntp.delay_ms = 100           # the simulated round trip
/// ```
public struct BoardSettings: Sendable {
    /// One `key = value` line, kept in file order and applied in that order.
    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: String
        public var line: Int
    }

    public private(set) var entries: [Entry] = []

    public init() {}

    /// A malformed line.
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Parses and checks a board file.
    public init(parsing text: String) throws(ParseError) {
        var number = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            var line = Substring(rawLine)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let trimmed = Self.trim(line)
            if trimmed.isEmpty { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw ParseError(line: number, message: "expected key = value")
            }
            let entry = Entry(key: Self.trim(trimmed[..<equals]).lowercased(),
                              value: Self.trim(trimmed[trimmed.index(after: equals)...]), line: number)
            if let problem = Self.check(entry) { throw ParseError(line: number, message: problem) }
            entries.append(entry)
        }
    }

    /// Adds a line (for tests building settings in code).
    public mutating func set(_ key: String, _ value: String) throws(ParseError) {
        let entry = Entry(key: key.lowercased(), value: value, line: entries.count + 1)
        if let problem = Self.check(entry) { throw ParseError(line: entry.line, message: problem) }
        entries.append(entry)
    }

    static func trim<S: StringProtocol>(_ text: S) -> String {
        var s = Substring(text)
        while let first = s.first, first == " " || first == "\t" || first == "\r" { s = s.dropFirst() }
        while let last = s.last, last == " " || last == "\t" || last == "\r" { s = s.dropLast() }
        return String(s)
    }

    static func list(_ value: String) -> [String] {
        value.split(separator: ",").map { trim($0) }
    }

    static func words(_ value: String) -> [String] {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    }

    /// `ms:value` pairs.
    static func timeline(_ value: String) -> [(Int64, Int)]? {
        var result: [(Int64, Int)] = []
        for item in list(value) {
            let parts = item.split(separator: ":").map { trim($0) }
            guard parts.count == 2, let ms = Int64(parts[0]), ms >= 0, let level = Int(parts[1]) else { return nil }
            result.append((ms, level))
        }
        return result.isEmpty ? nil : result
    }

    static func pin(in key: String, prefix: String, suffix: String = "") -> Int? {
        guard key.hasPrefix(prefix), key.hasSuffix(suffix) else { return nil }
        let middle = key.dropFirst(prefix.count).dropLast(suffix.count)
        guard let pin = Int(middle), GPIOBank.exists(pin) else { return nil }
        return pin
    }

    static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    static func mode(_ value: String) -> WiFiRadio.Mode? {
        switch value.lowercased() {
        case "null", "nullmode": return .null
        case "station": return .station
        case "softap": return .softAP
        case "stationap": return .stationAP
        default: return nil
        }
    }

    static func bool(_ value: String) -> Bool? {
        switch value.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: return nil
        }
    }

    /// Why `entry` cannot be applied, or nil.
    static func check(_ entry: Entry) -> String? {
        let key = entry.key, value = entry.value
        if pin(in: key, prefix: "gpio.", suffix: ".at") != nil {
            return timeline(value) == nil ? "expected ms:level, … (levels 0 or 1)" : nil
        }
        if pin(in: key, prefix: "gpio.") != nil {
            return ["0", "1", "none"].contains(value) ? nil : "expected 0, 1 or none"
        }
        if pin(in: key, prefix: "dht.") != nil {
            return dhtSensor(value) == nil && value != "none"
                ? "expected none, raw b0 b1 b2 b3 b4, or MODEL temperature humidity" : nil
        }
        switch key {
        case "adc": return Int(value).map { (0...1024).contains($0) } == true ? nil : "expected 0…1024"
        case "adc.vdd33": return Int(value).map { (0...65535).contains($0) } == true ? nil : "expected millivolts"
        case "adc.mode": return ["adc", "vdd33"].contains(value.lowercased()) ? nil : "expected adc or vdd33"
        case "rtc": return value == "now" || value == "unset" || Int64(value) != nil ? nil : "expected epoch seconds, now or unset"
        case "wifi.mode": return mode(value) == nil ? "expected null, station, softap or stationap" : nil
        case "wifi.ssid": return value.utf8.count <= 32 ? nil : "at most 32 bytes"
        case "wifi.password": return value.utf8.count <= 64 ? nil : "at most 64 bytes"
        case "wifi.autoconnect": return bool(value) == nil ? "expected true or false" : nil
        case "wifi.outcome": return WiFiRadio.Outcome(rawValue: value) == nil ? "expected success, wrong_password, no_ap or fail" : nil
        case "wifi.ip", "wifi.netmask", "wifi.gateway": return isIPv4(value) ? nil : "expected an IPv4 address"
        case "wifi.mac", "wifi.bssid": return isMAC(value) ? nil : "expected a MAC address aa:bb:cc:dd:ee:ff"
        case "wifi.hostname": return value.isEmpty || value.utf8.count > 32 ? "1 to 32 characters" : nil
        case "wifi.rssi": return Int(value) == nil ? "expected dBm" : nil
        case "wifi.channel": return Int(value).map { (1...14).contains($0) } == true ? nil : "expected 1…14"
        case "wifi.connect_ms", "wifi.dhcp_ms": return Int64(value).map { $0 >= 0 } == true ? nil : "expected milliseconds"
        case "wifi.ap": return accessPoint(value) == nil ? "expected ssid, bssid, rssi, authmode, channel[, password]" : nil
        case "wifi.drop.at": return timeline(value) == nil ? "expected ms:reason" : nil
        case "sntp": return NetworkTime.Failure(rawValue: value) == nil ? "expected none, dns or no_answer" : nil
        case "sntp.delay_ms": return Int64(value).map { $0 >= 0 } == true ? nil : "expected milliseconds"
        default: return "unknown key \(key)"
        }
    }

    static func isMAC(_ text: String) -> Bool {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { $0.count == 2 && UInt8($0, radix: 16) != nil }
    }

    static func dhtSensor(_ value: String) -> DHTSensors.Sensor? {
        let w = words(value)
        if w.first?.lowercased() == "raw" {
            let bytes = w.dropFirst().compactMap { UInt8($0) }
            return bytes.count == 5 && w.count == 6 ? .raw(bytes) : nil
        }
        guard w.count == 3, let model = DHTSensors.Model(rawValue: w[0].uppercased()),
              let t = Double(w[1]), let h = Double(w[2]) else { return nil }
        return .model(model, temperature: t, humidity: h)
    }

    static func accessPoint(_ value: String) -> WiFiRadio.AccessPoint? {
        let f = list(value)
        guard f.count == 5 || f.count == 6, !f[0].isEmpty, isMAC(f[1].lowercased()), let rssi = Int(f[2]),
              let auth = Int(f[3]), (0...4).contains(auth), let channel = Int(f[4]), (1...14).contains(channel)
        else { return nil }
        return WiFiRadio.AccessPoint(ssid: f[0], bssid: f[1].lowercased(), rssi: rssi, authMode: auth,
                                     channel: channel, password: f.count == 6 ? f[5] : nil)
    }

    /// Applies every entry to `board`, in file order (checked already).
    func apply(to board: Board) {
        var accessPoints: [WiFiRadio.AccessPoint] = []
        for entry in entries {
            let key = entry.key, value = entry.value
            if let pin = Self.pin(in: key, prefix: "gpio.", suffix: ".at") {
                for (ms, level) in Self.timeline(value) ?? [] {
                    board.gpio.drive(pin, level == 0 ? 0 : 1, after: .milliseconds(ms))
                }
                continue
            }
            if let pin = Self.pin(in: key, prefix: "gpio.") {
                board.gpio.drive(pin, value == "none" ? nil : Int(value))
                continue
            }
            if let pin = Self.pin(in: key, prefix: "dht.") {
                board.dht[pin] = Self.dhtSensor(value)
                continue
            }
            let wifi = board.wifi
            switch key {
            case "adc": board.adc.input = Int(value) ?? 0
            case "adc.vdd33": board.adc.vdd33 = Int(value) ?? 3300
            case "adc.mode": board.adc.initByte = value.lowercased() == "vdd33" ? 0xFF : 0x00
            case "rtc":
                if value == "unset" {
                    board.rtc.clear()
                } else {
                    let seconds = value == "now" ? HostClock.epochSeconds : Int64(value) ?? 0
                    board.rtc.set(seconds: seconds)
                }
            case "wifi.mode": wifi.savedMode = Self.mode(value) ?? .station
            case "wifi.ssid":
                var config = wifi.stationConfig ?? WiFiRadio.StationConfig(ssid: [])
                config.ssid = Array(value.utf8)
                wifi.stationConfig = config
            case "wifi.password":
                var config = wifi.stationConfig ?? WiFiRadio.StationConfig(ssid: [])
                config.password = Array(value.utf8)
                wifi.stationConfig = config
            case "wifi.autoconnect": wifi.autoConnect = Self.bool(value) ?? true
            case "wifi.outcome": wifi.outcome = WiFiRadio.Outcome(rawValue: value) ?? .success
            case "wifi.ip": wifi.address.ip = value
            case "wifi.netmask": wifi.address.netmask = value
            case "wifi.gateway": wifi.address.gateway = value
            case "wifi.mac": wifi.mac = value.lowercased()
            case "wifi.hostname": wifi.hostname = value
            case "wifi.rssi": wifi.rssi = Int(value) ?? -55
            case "wifi.bssid": wifi.bssid = value.lowercased()
            case "wifi.channel": wifi.channel = Int(value) ?? 6
            case "wifi.connect_ms": wifi.associationDelay = .milliseconds(Int64(value) ?? 100)
            case "wifi.dhcp_ms": wifi.dhcpDelay = .milliseconds(Int64(value) ?? 50)
            case "wifi.ap": if let ap = Self.accessPoint(value) { accessPoints.append(ap) }
            case "wifi.drop.at":
                for (ms, reason) in Self.timeline(value) ?? [] {
                    board.schedule(in: .milliseconds(ms)) { [weak wifi] in wifi?.dropLink(reason: reason) }
                }
            case "sntp": board.networkTime.failure = NetworkTime.Failure(rawValue: value) ?? .none
            case "sntp.delay_ms": board.networkTime.delay = .milliseconds(Int64(value) ?? 100)
            default: break
            }
        }
        if !accessPoints.isEmpty { board.wifi.accessPoints = accessPoints }
    }
}
