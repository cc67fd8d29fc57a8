import NIOCore

/// The ESP8266's Wi-Fi radio as the `wifi` and `enduser_setup` modules see it (main spec
/// §5.4): the operating mode, the station (its saved configuration, connection state,
/// addresses, RSSI, scan results) and a minimal soft-AP.
///
/// The station associates asynchronously: `connect()` sets status "connecting" and,
/// `associationDelay` later, either connects (`.staConnected`, then `dhcpDelay` later
/// `.gotIP` with `address`) or fails as `outcome` says (`.staDisconnected` with the
/// firmware's reason code, status wrong password / AP not found / failed). Events reach
/// the subscribers from board-scheduled work, never inside the call that caused them.
///
/// The station's default addresses are the host's own (first non-loopback IPv4
/// interface and the default gateway); every value can be set from outside.
public final class WiFiRadio {
    /// `wifi.NULLMODE` … `wifi.STATIONAP`.
    public enum Mode: Int, Sendable, CaseIterable {
        case null = 0, station = 1, softAP = 2, stationAP = 3
        public var hasStation: Bool { self == .station || self == .stationAP }
        public var hasSoftAP: Bool { self == .softAP || self == .stationAP }
    }

    /// `wifi.STA_IDLE` … `wifi.STA_GOTIP`.
    public enum StationStatus: Int, Sendable {
        case idle = 0, connecting = 1, wrongPassword = 2, noAPFound = 3, connectFail = 4, gotIP = 5
    }

    /// How the next association attempt ends (set from outside to test failure paths).
    public enum Outcome: String, Sendable, CaseIterable {
        case success
        /// Status `STA_WRONGPWD`, reason `4WAY_HANDSHAKE_TIMEOUT` (15).
        case wrongPassword = "wrong_password"
        /// Status `STA_APNOTFOUND`, reason `NO_AP_FOUND` (201).
        case noAccessPoint = "no_ap"
        /// Status `STA_FAIL`, reason `ASSOC_FAIL` (203).
        case fail
    }

    /// The firmware's disconnect reasons (`wifi.eventmon.reason`).
    public enum Reason {
        public static let unspecified = 1
        public static let assocLeave = 8
        public static let fourWayHandshakeTimeout = 15
        public static let beaconTimeout = 200
        public static let noAPFound = 201
        public static let authFail = 202
        public static let assocFail = 203
        public static let handshakeTimeout = 204
    }

    /// An event of the SDK's event callback, numbered as `wifi.eventmon.*`.
    public enum Event: Sendable, Equatable {
        case staConnected(ssid: [UInt8], bssid: String, channel: Int)
        case staDisconnected(ssid: [UInt8], bssid: String, reason: Int)
        case staAuthModeChanged(old: Int, new: Int)
        case staGotIP(ip: String, netmask: String, gateway: String)
        case staDHCPTimeout
        case apStationConnected(mac: String, aid: Int)
        case apStationDisconnected(mac: String, aid: Int)
        case apProbeRequest(mac: String, rssi: Int)
        case modeChanged(old: Int, new: Int)

        /// The `wifi.eventmon` number.
        public var id: Int {
            switch self {
            case .staConnected: return 0
            case .staDisconnected: return 1
            case .staAuthModeChanged: return 2
            case .staGotIP: return 3
            case .staDHCPTimeout: return 4
            case .apStationConnected: return 5
            case .apStationDisconnected: return 6
            case .apProbeRequest: return 7
            case .modeChanged: return 8
            }
        }
    }

    /// A network the station can see (`wifi.sta.getap` results).
    public struct AccessPoint: Sendable, Equatable {
        public var ssid: String
        public var bssid: String
        public var rssi: Int
        /// `wifi.OPEN` 0, `WEP` 1, `WPA_PSK` 2, `WPA2_PSK` 3, `WPA_WPA2_PSK` 4.
        public var authMode: Int
        public var channel: Int
        /// When set, a station configured with another password fails with
        /// `wrongPassword`.
        public var password: String?

        public init(ssid: String, bssid: String, rssi: Int = -60, authMode: Int = 3, channel: Int = 6, password: String? = nil) {
            self.ssid = ssid
            self.bssid = bssid
            self.rssi = rssi
            self.authMode = authMode
            self.channel = channel
            self.password = password
        }
    }

    /// The station configuration saved in flash.
    public struct StationConfig: Sendable, Equatable {
        public var ssid: [UInt8]
        public var password: [UInt8]
        /// Only connect to this BSSID (nil: any).
        public var bssid: String?

        public init(ssid: [UInt8], password: [UInt8] = [], bssid: String? = nil) {
            self.ssid = ssid
            self.password = password
            self.bssid = bssid
        }
    }

    /// The soft-AP configuration.
    public struct SoftAPConfig: Sendable, Equatable {
        public var ssid: [UInt8]
        public var password: [UInt8] = []
        public var authMode = 0
        public var channel = 6
        public var hidden = false
        public var maxConnections = 4
        public var beaconInterval = 100
    }

    /// An IPv4 configuration as dotted strings.
    public struct Address: Sendable, Equatable {
        public var ip: String
        public var netmask: String
        public var gateway: String

        public init(ip: String, netmask: String, gateway: String) {
            self.ip = ip
            self.netmask = netmask
            self.gateway = gateway
        }
    }

    weak var board: Board?

    // MARK: State a script can read (all settable from outside)

    /// The current operating mode (`wifi.getmode()`).
    public private(set) var mode: Mode = .station
    /// The mode saved in flash, used at boot (`wifi.getdefaultmode()`).
    public var savedMode: Mode = .station
    /// The saved station configuration; nil: never configured (no auto-connect at boot).
    public var stationConfig: StationConfig?
    /// Whether the station connects by itself at boot (`wifi.sta.autoconnect`).
    public var autoConnect = true
    public private(set) var status: StationStatus = .idle
    /// The address DHCP hands out (default: the host's interface).
    public var address: Address
    /// The address in use, or nil while the station has none (`getip()` → nil).
    public private(set) var currentAddress: Address?
    /// Set by `wifi.sta.setip`: used instead of DHCP.
    public var staticAddress: Address?
    public var mac: String
    public var softAPMAC: String
    public var hostname: String
    /// Signal strength while connected, in dBm.
    public var rssi = -55
    /// The BSSID and channel of the network the station joins.
    public var bssid = "a0:f3:c1:4d:2e:17"
    public var channel = 6
    /// What a scan finds; by default one network, the configured one.
    public var accessPoints: [AccessPoint] = []
    /// How the next association attempts end (default `.success`).
    public var outcome: Outcome = .success
    /// Time from `connect()` to `.staConnected` (or to the failure).
    public var associationDelay: TimeAmount = .milliseconds(100)
    /// Time from `.staConnected` to `.staGotIP`.
    public var dhcpDelay: TimeAmount = .milliseconds(50)
    /// Time a scan takes (`wifi.sta.getap`).
    public var scanDelay: TimeAmount = .milliseconds(100)
    /// The soft-AP and its address (default 192.168.4.1/24).
    public var softAP: SoftAPConfig
    public var softAPAddress = Address(ip: "192.168.4.1", netmask: "255.255.255.0", gateway: "192.168.4.1")
    /// Stations connected to the soft-AP: MAC and IP.
    public var softAPClients: [(mac: String, ip: String)] = []

    private var observers: [String: (Event) -> Void] = [:]
    private var association: BoardTask?

    init(chipID: Int) {
        let bytes = [(chipID >> 16) & 0xFF, (chipID >> 8) & 0xFF, chipID & 0xFF]
        func hex2(_ value: Int) -> String { (value < 16 ? "0" : "") + String(value, radix: 16) }
        mac = (["5c", "cf", "7f"] + bytes.map(hex2)).joined(separator: ":")
        softAPMAC = (["5e", "cf", "7f"] + bytes.map(hex2)).joined(separator: ":")
        // The firmware's default host name: "NODE-" and the last three MAC bytes as %X.
        hostname = "NODE-" + bytes.map { String($0, radix: 16, uppercase: true) }.joined()
        softAP = SoftAPConfig(ssid: Array(("ESP_" + bytes.map { hex2($0).uppercased() }.joined()).utf8))
        address = HostInterface.current()
        stationConfig = StationConfig(ssid: Array("nodemcu-host".utf8))
    }

    /// Subscribes to events (one subscriber per key; nil removes it).
    public func observe(_ key: String, _ body: ((Event) -> Void)?) { observers[key] = body }

    /// Whether anything would turn the radio's events into callbacks (the wifi module:
    /// a registered `wifi.eventmon` or `sta.config` callback). Pending radio work keeps
    /// the process alive only while this is true.
    public var hasListeners: () -> Bool = { true }

    /// Schedules radio work that holds the process up only while someone listens.
    private func scheduleRadioWork(in delay: TimeAmount, _ body: @escaping () -> Void) -> BoardTask? {
        board?.schedule(in: delay, keepsAlive: { [weak self] in self?.hasListeners() ?? false }, body)
    }

    /// Delivers `event` to the subscribers from board-scheduled work (never inside the
    /// caller's frame).
    public func post(_ event: Event) {
        _ = scheduleRadioWork(in: .zero) { [weak self] in self?.deliver(event) }
    }

    private func deliver(_ event: Event) {
        for observer in observers.values { observer(event) }
    }

    /// The scan results: `accessPoints`, or the configured network alone when empty.
    public var scanResults: [AccessPoint] {
        if !accessPoints.isEmpty { return accessPoints }
        guard let config = stationConfig, !config.ssid.isEmpty else { return [] }
        return [AccessPoint(ssid: String(decoding: config.ssid, as: UTF8.self), bssid: bssid, rssi: rssi,
                            authMode: config.password.isEmpty ? 0 : 3, channel: channel)]
    }

    // MARK: Operations (the firmware's calls and the world's changes)

    /// Changes the operating mode; posts `.modeChanged` when it changes. Leaving station
    /// mode drops the connection; entering it starts auto-connect.
    public func setMode(_ newMode: Mode, save: Bool = true) {
        if save { savedMode = newMode }
        let old = mode
        guard newMode != old else { return }
        mode = newMode
        post(.modeChanged(old: old.rawValue, new: newMode.rawValue))
        if old.hasStation && !newMode.hasStation {
            stopStation(reason: Reason.assocLeave, event: status == .gotIP || status == .connecting)
        } else if !old.hasStation && newMode.hasStation && autoConnect {
            connect()
        }
    }

    /// Starts associating with the configured network (status "connecting"). Does
    /// nothing without station mode or configuration.
    public func connect() {
        guard mode.hasStation, let config = stationConfig, !config.ssid.isEmpty else { return }
        association?.cancel()
        if status == .gotIP {
            // Reconnecting drops the current association first.
            post(.staDisconnected(ssid: config.ssid, bssid: bssid, reason: Reason.assocLeave))
        }
        currentAddress = nil
        status = .connecting
        association = scheduleRadioWork(in: associationDelay) { [weak self] in self?.associate() }
    }

    private func associate() {
        guard let config = stationConfig else { return }
        var result = outcome
        if result == .success, let ap = accessPoints.first(where: { Array($0.ssid.utf8) == config.ssid }),
           let password = ap.password, Array(password.utf8) != config.password {
            result = .wrongPassword
        }
        switch result {
        case .success:
            let ap = accessPoints.first { Array($0.ssid.utf8) == config.ssid }
            let joined = config.bssid ?? ap?.bssid ?? bssid
            bssid = joined
            if let ap { channel = ap.channel; rssi = ap.rssi }
            deliver(.staConnected(ssid: config.ssid, bssid: joined, channel: channel))
            association = scheduleRadioWork(in: dhcpDelay) { [weak self] in self?.obtainAddress() }
        case .wrongPassword, .noAccessPoint, .fail:
            association = nil
            let (newStatus, reason): (StationStatus, Int) =
                result == .wrongPassword ? (.wrongPassword, Reason.fourWayHandshakeTimeout)
                : result == .noAccessPoint ? (.noAPFound, Reason.noAPFound) : (.connectFail, Reason.assocFail)
            status = newStatus
            deliver(.staDisconnected(ssid: config.ssid, bssid: "00:00:00:00:00:00", reason: reason))
        }
    }

    private func obtainAddress() {
        association = nil
        let address = staticAddress ?? self.address
        currentAddress = address
        status = .gotIP
        deliver(.staGotIP(ip: address.ip, netmask: address.netmask, gateway: address.gateway))
    }

    /// The script disconnects (`wifi.sta.disconnect()`): status idle, no address,
    /// `.staDisconnected` with reason `ASSOC_LEAVE` if it was connected or connecting.
    public func disconnect() {
        stopStation(reason: Reason.assocLeave, event: status == .gotIP || status == .connecting)
    }

    /// The world drops the link (AP gone, out of range): `.staDisconnected` with
    /// `reason` (default `BEACON_TIMEOUT`); with auto-connect the station then tries
    /// again (and `outcome` decides how that ends).
    public func dropLink(reason: Int = Reason.beaconTimeout) {
        guard status == .gotIP || status == .connecting else { return }
        stopStation(reason: reason, event: true)
        if autoConnect { connect() }
    }

    private func stopStation(reason: Int, event: Bool) {
        association?.cancel()
        association = nil
        currentAddress = nil
        status = .idle
        if event, let config = stationConfig {
            post(.staDisconnected(ssid: config.ssid, bssid: bssid, reason: reason))
        }
    }

    /// The device reboots: the connection is gone; the saved mode applies, and the
    /// station auto-connects if configured.
    func reboot() {
        association?.cancel()
        association = nil
        currentAddress = nil
        status = .idle
        mode = savedMode
        staticAddress = nil
        if mode.hasStation && autoConnect { connect() }
    }
}
