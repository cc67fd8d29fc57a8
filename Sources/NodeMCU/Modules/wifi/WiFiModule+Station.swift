import Board
import LuaBridge

/// Lua: `wifi.sta.*` (main spec §5.4) on the board's station.
extension WiFiModule {
    func registerStation(in table: inout LuaModuleTable) {
        table.function("config") { [unowned self] lua throws(LuaError) in try staConfig(lua) }
        table.function("connect") { [unowned self] lua throws(LuaError) in staConnect(lua) }
        table.function("disconnect") { [unowned self] lua throws(LuaError) in staDisconnect(lua) }
        table.function("autoconnect") { [unowned self] lua throws(LuaError) in try staAutoconnect(lua) }
        table.function("status") { [unowned self] lua throws(LuaError) in staStatus(lua) }
        table.function("getip") { [unowned self] lua throws(LuaError) in staGetip(lua) }
        table.function("setip") { [unowned self] lua throws(LuaError) in try staSetip(lua) }
        table.function("getbroadcast") { [unowned self] lua throws(LuaError) in staGetbroadcast(lua) }
        table.function("getmac") { [unowned self] lua throws(LuaError) in pushString(radio.mac, lua) }
        table.function("setmac") { [unowned self] lua throws(LuaError) in try setmac(lua, softAP: false) }
        table.function("getrssi") { [unowned self] lua throws(LuaError) in staGetrssi(lua) }
        table.function("gethostname") { [unowned self] lua throws(LuaError) in pushString(radio.hostname, lua) }
        table.function("sethostname") { [unowned self] lua throws(LuaError) in try staSethostname(lua) }
        table.function("getconfig") { [unowned self] lua throws(LuaError) in staGetconfig(lua) }
        table.function("getdefaultconfig") { [unowned self] lua throws(LuaError) in staGetconfig(lua) }
        table.function("clearconfig") { [unowned self] lua throws(LuaError) in staClearconfig(lua) }
        table.function("getap") { [unowned self] lua throws(LuaError) in try staGetap(lua) }
        table.function("getapinfo") { [unowned self] lua throws(LuaError) in staGetapinfo(lua) }
        table.function("getapindex") { lua throws(LuaError) in lua.push(1); return 1 }
        table.function("setaplimit") { lua throws(LuaError) in
            let limit = try lua.checkInteger(1)
            guard (1...5).contains(limit) else { throw .argument(1, "Invalid AP limit") }
            lua.push(true)
            return 1
        }
        table.function("changeap") { lua throws(LuaError) in
            let index = try lua.checkInteger(1)
            guard (1...5).contains(index) else { throw .argument(1, "Invalid AP index") }
            lua.push(true)
            return 1
        }
        table.function("sleeptype") { [unowned self] lua throws(LuaError) in try staSleeptype(lua) }
    }

    func pushString(_ value: String, _ lua: LuaState) -> Int32 {
        lua.push(value)
        return 1
    }

    /// Lua: wifi.sta.config(station_config) → true — `{ssid, pwd, auto = true, bssid,
    /// save = true, connected_cb, disconnected_cb, authmode_change_cb, got_ip_cb,
    /// dhcp_timeout_cb}`; the `*_cb` fields register the `wifi.eventmon` slots. With
    /// `auto` the station (re)connects at once (events follow asynchronously).
    private func staConfig(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard lua.type(at: 1) == .table else { throw .argument(1, "config table not found!") }
        var ssid: [UInt8] = []
        if lua.getField("ssid", in: 1) != .nil_ {
            guard lua.isStringLike(-1), let bytes = lua.bytes(at: -1) else { lua.pop(); throw .argument(1, "ssid: not string") }
            ssid = bytes
            guard ssid.count <= 32 else { lua.pop(); throw .argument(1, "ssid: length:0-32") }
        }
        lua.pop()
        var password: [UInt8] = []
        if lua.getField("pwd", in: 1) != .nil_ {
            guard lua.isStringLike(-1), let bytes = lua.bytes(at: -1) else { lua.pop(); throw .argument(1, "pwd: not string") }
            password = bytes
            guard password.count == 0 || (8...64).contains(password.count) else {
                lua.pop()
                throw .argument(1, "pwd: length:0 or 8-64")
            }
        }
        lua.pop()
        var bssid: String?
        if lua.getField("bssid", in: 1) != .nil_ {
            guard let text = lua.string(at: -1), let parsed = Self.parseMAC(text) else {
                lua.pop()
                throw .argument(1, "bssid: FF:FF:FF:FF:FF:FF")
            }
            bssid = parsed
        }
        lua.pop()
        var auto = true
        if lua.getField("auto", in: 1) != .nil_ { auto = lua.boolean(at: -1) }
        lua.pop()
        var save = true
        if lua.getField("save", in: 1) != .nil_ { save = lua.boolean(at: -1) }
        lua.pop()
        for (field, event) in [("connected_cb", 0), ("disconnected_cb", 1), ("authmode_change_cb", 2),
                               ("got_ip_cb", 3), ("dhcp_timeout_cb", 4)] {
            if lua.getField(field, in: 1) != .nil_ { setEventCallback(event, from: -1, on: lua) }
            lua.pop()
        }
        _ = save
        radio.stationConfig = WiFiRadio.StationConfig(ssid: ssid, password: password, bssid: bssid)
        if auto {
            radio.disconnect()
            radio.connect()
        }
        lua.push(true)
        return 1
    }

    /// `aa:bb:cc:dd:ee:ff` (either case) as lower-case, or nil.
    static func parseMAC(_ text: String) -> String? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6, parts.allSatisfy({ $0.count == 2 && UInt8($0, radix: 16) != nil }) else { return nil }
        return text.lowercased()
    }

    /// Lua: wifi.sta.connect([connected_cb])
    private func staConnect(_ lua: LuaState) -> Int32 {
        if lua.isFunction(1) { setEventCallback(0, from: 1, on: lua) }
        radio.connect()
        return 0
    }

    /// Lua: wifi.sta.disconnect([disconnected_cb])
    private func staDisconnect(_ lua: LuaState) -> Int32 {
        if lua.isFunction(1) { setEventCallback(1, from: 1, on: lua) }
        radio.disconnect()
        return 0
    }

    /// Lua: wifi.sta.autoconnect(auto)
    private func staAutoconnect(_ lua: LuaState) throws(LuaError) -> Int32 {
        let value = try lua.checkInteger(1)
        radio.autoConnect = value != 0
        return 0
    }

    /// Lua: wifi.sta.status() → one of wifi.STA_*
    private func staStatus(_ lua: LuaState) -> Int32 {
        lua.push(radio.status.rawValue)
        return 1
    }

    /// Lua: wifi.sta.getip() → ip, netmask, gateway, or nil without an address
    private func staGetip(_ lua: LuaState) -> Int32 {
        guard radio.mode.hasStation, let address = radio.currentAddress else {
            lua.pushNil()
            return 1
        }
        lua.push(address.ip)
        lua.push(address.netmask)
        lua.push(address.gateway)
        return 3
    }

    /// Lua: wifi.sta.setip({ip, netmask, gateway}) → true (a static address instead of DHCP)
    private func staSetip(_ lua: LuaState) throws(LuaError) -> Int32 {
        let address = try readAddress(lua)
        radio.staticAddress = address
        lua.push(true)
        return 1
    }

    func readAddress(_ lua: LuaState) throws(LuaError) -> WiFiRadio.Address {
        guard lua.type(at: 1) == .table else { throw .argument(1, "config table not found!") }
        var values: [String] = []
        for key in ["ip", "netmask", "gateway"] {
            _ = lua.getField(key, in: 1)
            let text = lua.string(at: -1)
            lua.pop()
            guard let text, Self.parseIPv4(text) != nil else {
                if key == "gateway" && text == nil { values.append(values.first ?? "0.0.0.0"); continue }
                throw .argument(1, "wrong arg type")
            }
            values.append(text)
        }
        return WiFiRadio.Address(ip: values[0], netmask: values[1], gateway: values[2])
    }

    static func parseIPv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard let byte = UInt8(part) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    static func broadcast(of address: WiFiRadio.Address) -> String? {
        guard let ip = parseIPv4(address.ip), let mask = parseIPv4(address.netmask) else { return nil }
        let value = ip | ~mask
        return [24, 16, 8, 0].map { String((value >> UInt32($0)) & 0xFF) }.joined(separator: ".")
    }

    /// Lua: wifi.sta.getbroadcast() → broadcast address, or nil without an address
    private func staGetbroadcast(_ lua: LuaState) -> Int32 {
        guard let address = radio.currentAddress, let text = Self.broadcast(of: address) else {
            lua.pushNil()
            return 1
        }
        lua.push(text)
        return 1
    }

    /// Lua: wifi.sta.setmac(mac), wifi.ap.setmac(mac) → true
    func setmac(_ lua: LuaState, softAP: Bool) throws(LuaError) -> Int32 {
        let text = try lua.checkString(1)
        guard let mac = Self.parseMAC(text) else { throw .argument(1, "wrong arg type") }
        if softAP { radio.softAPMAC = mac } else { radio.mac = mac }
        lua.push(true)
        return 1
    }

    /// Lua: wifi.sta.getrssi() → dBm, or nil while not connected
    private func staGetrssi(_ lua: LuaState) -> Int32 {
        if radio.status == .gotIP { lua.push(radio.rssi) } else { lua.pushNil() }
        return 1
    }

    /// Lua: wifi.sta.sethostname(name) → true, or false for a name the SDK refuses
    /// (1–32 letters, digits and '-', not starting or ending with '-')
    private func staSethostname(_ lua: LuaState) throws(LuaError) -> Int32 {
        let name = try lua.checkString(1)
        guard name.utf8.count <= 32 else { throw .argument(1, "length:1-32") }
        let valid = !name.isEmpty && !name.hasPrefix("-") && !name.hasSuffix("-")
            && name.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 }
        if valid { radio.hostname = name }
        lua.push(valid)
        return 1
    }

    /// Lua: wifi.sta.getconfig([return_table]), wifi.sta.getdefaultconfig([return_table])
    /// → ssid, pwd, bssid_set, bssid; or the table {ssid, pwd, bssid_set, bssid}
    private func staGetconfig(_ lua: LuaState) -> Int32 {
        let config = radio.stationConfig ?? WiFiRadio.StationConfig(ssid: [])
        let bssid = config.bssid ?? "ff:ff:ff:ff:ff:ff"
        let bssidSet = config.bssid == nil ? 0 : 1
        if lua.boolean(at: 1) {
            lua.newTable(fieldCapacity: 4)
            lua.push(config.ssid)
            lua.setField("ssid", in: -2)
            lua.push(config.password)
            lua.setField("pwd", in: -2)
            lua.push(bssidSet == 1)
            lua.setField("bssid_set", in: -2)
            lua.push(bssid)
            lua.setField("bssid", in: -2)
            return 1
        }
        if config.ssid.isEmpty {
            lua.pushNil()
            return 1
        }
        lua.push(config.ssid)
        lua.push(config.password)
        lua.push(bssidSet)
        lua.push(bssid)
        return 4
    }

    /// Lua: wifi.sta.clearconfig() → true
    private func staClearconfig(_ lua: LuaState) -> Int32 {
        radio.disconnect()
        radio.stationConfig = nil
        lua.push(true)
        return 1
    }

    /// Lua: wifi.sta.getap([cfg,] [format,] callback) — `callback(table)` after a
    /// simulated scan of the board's networks; format 0: `t[ssid] =
    /// "authmode,rssi,bssid,channel"`, format 1: `t[bssid] = "ssid,rssi,authmode,channel"`.
    private func staGetap(_ lua: LuaState) throws(LuaError) -> Int32 {
        let top = lua.top
        guard top >= 1, lua.isFunction(top) else { throw .argument(max(top, 1), "function expected") }
        var format = 0
        if top >= 2 && lua.type(at: top - 1) == .number {
            format = lua.integer(at: top - 1) ?? 0
        }
        guard radio.mode.hasStation else { throw .message("Can't get AP list while in SOFTAP mode") }
        scan(callback: lua.ref(at: top), format: format)
        return 0
    }

    /// Lua: wifi.sta.getapinfo() → count, {[1] = {ssid, pwd, bssid_set, bssid}}
    private func staGetapinfo(_ lua: LuaState) -> Int32 {
        let config = radio.stationConfig
        lua.push(config == nil ? 0 : 1)
        lua.newTable()
        if let config {
            lua.newTable(fieldCapacity: 4)
            lua.push(config.ssid)
            lua.setField("ssid", in: -2)
            lua.push(config.password)
            lua.setField("pwd", in: -2)
            lua.push(config.bssid != nil)
            lua.setField("bssid_set", in: -2)
            lua.push(config.bssid ?? "ff:ff:ff:ff:ff:ff")
            lua.setField("bssid", in: -2)
            lua.rawSet(1, in: -2)
        }
        return 2
    }

    /// Lua: wifi.sta.sleeptype(type) → the sleep type now in effect
    private func staSleeptype(_ lua: LuaState) throws(LuaError) -> Int32 {
        let type = try lua.checkInteger(1)
        guard (0...2).contains(type) else { throw .argument(1, "wrong arg type") }
        lua.push(type)
        return 1
    }
}
