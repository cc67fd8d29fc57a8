import Board
import LuaBridge
import NIOCore

/// Lua: the `wifi` module (main spec §5.4), both profiles, on the board's radio
/// (`Board.wifi`): `wifi.*`, `wifi.sta.*`, a minimal `wifi.ap.*` (with `wifi.ap.dhcp`)
/// and `wifi.eventmon`. Followed: app/modules/wifi.c, wifi_eventmon.c,
/// wifi_common.c and docs/modules/wifi.md of the firmware.
///
/// The station associates asynchronously (`WiFiRadio.connect`); events reach the
/// `wifi.eventmon` callbacks (and the `sta.config` `*_cb` fields, which register the
/// same slots, as in the firmware) in order, one callback per event, never inside the
/// call that caused them. Smart config, `wifi.suspend`/`resume` and `wifi.monitor`
/// are not in the default build and not provided.
public final class WiFiModule: LuaModule {
    public static let name = "wifi"
    /// Watches the board's Wi-Fi events from boot (the saved association at power-on).
    public static let createdAtBoot = true
    /// The SDK's `EVENT_MAX` (`wifi.eventmon.EVENT_MAX`): registering it catches events
    /// the firmware has no constant for (none happen on the host).
    static let eventMax = 10

    unowned let runtime: Runtime
    var radio: WiFiRadio { runtime.board.wifi }
    /// `wifi.eventmon` callbacks by event number (0…EVENT_MAX).
    private var eventCallbacks: [Int: LuaRef] = [:]
    private var sleepType = 2
    private var phyMode = 3
    private var scans: Set<ObjectIdentifier> = []

    public init(runtime: Runtime) {
        self.runtime = runtime
        runtime.board.wifi.observe("wifi") { [weak self] event in self?.deliver(event) }
        // Radio work holds a script up only if one of its callbacks could run.
        runtime.board.wifi.hasListeners = { [weak self] in !(self?.eventCallbacks.isEmpty ?? true) }
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("setmode") { [unowned self] lua throws(LuaError) in try setmode(lua) }
        table.function("getmode") { [unowned self] lua throws(LuaError) in push(radio.mode.rawValue, lua) }
        table.function("getdefaultmode") { [unowned self] lua throws(LuaError) in push(radio.savedMode.rawValue, lua) }
        table.function("getchannel") { [unowned self] lua throws(LuaError) in push(radio.channel, lua) }
        table.function("setphymode") { [unowned self] lua throws(LuaError) in try setphymode(lua) }
        table.function("getphymode") { [unowned self] lua throws(LuaError) in push(phyMode, lua) }
        table.function("sleeptype") { [unowned self] lua throws(LuaError) in try sleeptype(lua) }
        table.function("nullmodesleep") { lua throws(LuaError) in Self.nullmodesleep(lua) }
        table.function("setmaxtxpower") { lua throws(LuaError) in _ = try lua.checkInteger(1); return 0 }
        table.function("getcountry") { lua throws(LuaError) in Self.getcountry(lua) }
        table.function("setcountry") { lua throws(LuaError) in try Self.setcountry(lua) }
        for (name, value) in [("NULLMODE", 0), ("STATION", 1), ("SOFTAP", 2), ("STATIONAP", 3),
                              ("PHYMODE_B", 1), ("PHYMODE_G", 2), ("PHYMODE_N", 3),
                              ("NONE_SLEEP", 0), ("LIGHT_SLEEP", 1), ("MODEM_SLEEP", 2),
                              ("OPEN", 0), ("WEP", 1), ("WPA_PSK", 2), ("WPA2_PSK", 3), ("WPA_WPA2_PSK", 4),
                              ("STA_IDLE", 0), ("STA_CONNECTING", 1), ("STA_WRONGPWD", 2),
                              ("STA_APNOTFOUND", 3), ("STA_FAIL", 4), ("STA_GOTIP", 5),
                              ("COUNTRY_AUTO", 0), ("COUNTRY_MANUAL", 1)] {
            table.integer(name, value)
        }
        table.table("sta") { [unowned self] sta in registerStation(in: &sta) }
        table.table("ap") { [unowned self] ap in registerSoftAP(in: &ap) }
        table.table("eventmon") { [unowned self] eventmon in registerEventMonitor(in: &eventmon) }
    }

    private func push(_ value: Int, _ lua: LuaState) -> Int32 {
        lua.push(value)
        return 1
    }

    // MARK: wifi.*

    /// Lua: wifi.setmode(mode[, save]) → the mode now in effect
    private func setmode(_ lua: LuaState) throws(LuaError) -> Int32 {
        let value = try lua.checkInteger(1)
        guard let mode = WiFiRadio.Mode(rawValue: value) else { throw .argument(1, "Invalid mode") }
        let save = lua.isNoneOrNil(2) ? true : lua.boolean(at: 2)
        radio.setMode(mode, save: save)
        lua.push(radio.mode.rawValue)
        return 1
    }

    /// Lua: wifi.setphymode(mode) → the mode now in effect
    private func setphymode(_ lua: LuaState) throws(LuaError) -> Int32 {
        let mode = try lua.checkInteger(1)
        guard (1...3).contains(mode) else { throw .argument(1, "Invalid mode") }
        phyMode = mode
        lua.push(mode)
        return 1
    }

    /// Lua: wifi.sleeptype(type) → the sleep type now in effect
    private func sleeptype(_ lua: LuaState) throws(LuaError) -> Int32 {
        let type = try lua.checkInteger(1)
        guard (0...2).contains(type) else { throw .argument(1, "wrong arg type") }
        sleepType = type
        lua.push(sleepType)
        return 1
    }

    /// Lua: wifi.nullmodesleep([enable[, resume_mode]]) → whether NULL-mode sleep is on
    private static func nullmodesleep(_ lua: LuaState) -> Int32 {
        lua.push(lua.isNoneOrNil(1) ? true : lua.boolean(at: 1))
        return 1
    }

    /// Lua: wifi.getcountry() → {country, start_ch, end_ch, policy}
    private static func getcountry(_ lua: LuaState) -> Int32 {
        lua.newTable(fieldCapacity: 4)
        lua.push("CN")
        lua.setField("country", in: -2)
        lua.push(1)
        lua.setField("start_ch", in: -2)
        lua.push(13)
        lua.setField("end_ch", in: -2)
        lua.push(0)
        lua.setField("policy", in: -2)
        return 1
    }

    /// Lua: wifi.setcountry(country_info) → true
    private static func setcountry(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard lua.type(at: 1) == .table else { throw .argument(1, "country info table not found!") }
        lua.push(true)
        return 1
    }

    // MARK: wifi.eventmon

    private func registerEventMonitor(in table: inout LuaModuleTable) {
        table.function("register") { [unowned self] lua throws(LuaError) in try eventRegister(lua) }
        table.function("unregister") { [unowned self] lua throws(LuaError) in try eventRegister(lua) }
        for (name, value) in [("STA_CONNECTED", 0), ("STA_DISCONNECTED", 1), ("STA_AUTHMODE_CHANGE", 2),
                              ("STA_GOT_IP", 3), ("STA_DHCP_TIMEOUT", 4), ("AP_STACONNECTED", 5),
                              ("AP_STADISCONNECTED", 6), ("AP_PROBEREQRECVED", 7), ("WIFI_MODE_CHANGED", 8),
                              ("EVENT_MAX", Self.eventMax)] {
            table.integer(name, value)
        }
        table.table("reason") { reasons in
            for (name, value) in Self.reasons { reasons.integer(name, value) }
        }
    }

    static let reasons: [(String, Int)] = [
        ("UNSPECIFIED", 1), ("AUTH_EXPIRE", 2), ("AUTH_LEAVE", 3), ("ASSOC_EXPIRE", 4), ("ASSOC_TOOMANY", 5),
        ("NOT_AUTHED", 6), ("NOT_ASSOCED", 7), ("ASSOC_LEAVE", 8), ("ASSOC_NOT_AUTHED", 9),
        ("DISASSOC_PWRCAP_BAD", 10), ("DISASSOC_SUPCHAN_BAD", 11), ("IE_INVALID", 13), ("MIC_FAILURE", 14),
        ("4WAY_HANDSHAKE_TIMEOUT", 15), ("GROUP_KEY_UPDATE_TIMEOUT", 16), ("IE_IN_4WAY_DIFFERS", 17),
        ("GROUP_CIPHER_INVALID", 18), ("PAIRWISE_CIPHER_INVALID", 19), ("AKMP_INVALID", 20),
        ("UNSUPP_RSN_IE_VERSION", 21), ("INVALID_RSN_IE_CAP", 22), ("802_1X_AUTH_FAILED", 23),
        ("CIPHER_SUITE_REJECTED", 24), ("BEACON_TIMEOUT", 200), ("NO_AP_FOUND", 201), ("AUTH_FAIL", 202),
        ("ASSOC_FAIL", 203), ("HANDSHAKE_TIMEOUT", 204),
    ]

    /// Lua: wifi.eventmon.register(event[, fn]), wifi.eventmon.unregister(event) — no
    /// function (or not a function) unregisters.
    private func eventRegister(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard let number = lua.number(at: 1) else { throw lua.typeError(1, expected: "number") }
        // The firmware casts to uint8: negatives wrap and fail the range check.
        let id = Int(UInt8(truncatingIfNeeded: LuaStateTruncate.int(number)))
        guard id <= Self.eventMax else { throw .message("valid wifi events:0-\(Self.eventMax)") }
        setEventCallback(id, from: 2, on: lua)
        return 0
    }

    /// Puts the function at `index` into event `id`'s slot, or clears the slot.
    func setEventCallback(_ id: Int, from index: Int32, on lua: LuaState) {
        if let old = eventCallbacks.removeValue(forKey: id) { lua.unref(old) }
        if lua.isFunction(index) { eventCallbacks[id] = lua.ref(at: index) }
    }

    /// Runs the callback registered for `event` with its table (3.0: traceback path).
    private func deliver(_ event: WiFiRadio.Event) {
        guard !runtime.halted, let callback = eventCallbacks[event.id] else { return }
        let lua = runtime.lua
        lua.push(callback)
        lua.newTable(fieldCapacity: 3)
        func field(_ key: String, _ value: String) { lua.push(value); lua.setField(key, in: -2) }
        func field(_ key: String, _ value: Int) { lua.push(value); lua.setField(key, in: -2) }
        switch event {
        case .staConnected(let ssid, let bssid, let channel):
            lua.push(ssid)
            lua.setField("SSID", in: -2)
            field("BSSID", bssid)
            field("channel", channel)
        case .staDisconnected(let ssid, let bssid, let reason):
            lua.push(ssid)
            lua.setField("SSID", in: -2)
            field("BSSID", bssid)
            field("reason", reason)
        case .staAuthModeChanged(let old, let new):
            field("old_auth_mode", old)
            field("new_auth_mode", new)
        case .staGotIP(let ip, let netmask, let gateway):
            field("IP", ip)
            field("netmask", netmask)
            field("gateway", gateway)
        case .staDHCPTimeout:
            break
        case .apStationConnected(let mac, let aid), .apStationDisconnected(let mac, let aid):
            field("MAC", mac)
            field("AID", aid)
        case .apProbeRequest(let mac, let rssi):
            field("MAC", mac)
            field("RSSI", rssi)
        case .modeChanged(let old, let new):
            field("old_mode", old)
            field("new_mode", new)
        }
        runtime.callback(.task, arguments: 1)
    }

    // MARK: getap scans

    /// A scan in progress: keeps the process alive until its callback has run.
    final class Scan: RuntimeHandle {
        var task: BoardTask?
        func abortForReboot() { task?.cancel() }
    }

    /// Runs `callback` with the board's scan results after the scan time.
    func scan(callback: LuaRef, format: Int) {
        let scan = Scan()
        runtime.retain(scan)
        let generation = runtime.generation
        scan.task = runtime.board.schedule(in: radio.scanDelay) { [weak self, unowned runtime] in
            runtime.release(scan)
            guard let self, runtime.isCurrent(generation) else { return }
            let lua = runtime.lua
            lua.push(callback)
            lua.unref(callback)
            lua.newTable()
            for ap in radio.scanResults {
                if format == 1 {
                    lua.push("\(ap.ssid),\(ap.rssi),\(ap.authMode),\(ap.channel)")
                    lua.setField(ap.bssid, in: -2)
                } else {
                    lua.push("\(ap.authMode),\(ap.rssi),\(ap.bssid),\(ap.channel)")
                    lua.setField(ap.ssid, in: -2)
                }
            }
            runtime.callback(.task, arguments: 1)
        }
    }
}

/// Truncation of a Lua number to an integer (toward zero), as the firmware's casts do.
enum LuaStateTruncate {
    static func int(_ value: Double) -> Int {
        if value.isNaN { return 0 }
        if value >= 9.2e18 { return Int.max }
        if value <= -9.2e18 { return Int.min }
        return Int(value.rounded(.towardZero))
    }
}
