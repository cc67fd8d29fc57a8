import Board
import LuaBridge

/// Lua: a minimal `wifi.ap.*` and `wifi.ap.dhcp.*` on the board's soft-AP: its
/// configuration and addresses are kept and reported; no station ever joins unless
/// the board lists one in `softAPClients`.
extension WiFiModule {
    func registerSoftAP(in table: inout LuaModuleTable) {
        table.function("config") { [unowned self] lua throws(LuaError) in try apConfig(lua) }
        table.function("getconfig") { [unowned self] lua throws(LuaError) in apGetconfig(lua) }
        table.function("getdefaultconfig") { [unowned self] lua throws(LuaError) in apGetconfig(lua) }
        table.function("getip") { [unowned self] lua throws(LuaError) in apGetip(lua) }
        table.function("setip") { [unowned self] lua throws(LuaError) in
            radio.softAPAddress = try readAddress(lua)
            lua.push(true)
            return 1
        }
        table.function("getbroadcast") { [unowned self] lua throws(LuaError) in
            guard radio.mode.hasSoftAP, let text = Self.broadcast(of: radio.softAPAddress) else { lua.pushNil(); return 1 }
            lua.push(text)
            return 1
        }
        table.function("getmac") { [unowned self] lua throws(LuaError) in pushString(radio.softAPMAC, lua) }
        table.function("setmac") { [unowned self] lua throws(LuaError) in try setmac(lua, softAP: true) }
        table.function("getclient") { [unowned self] lua throws(LuaError) in apGetclient(lua) }
        table.function("deauth") { lua throws(LuaError) in
            if !lua.isNoneOrNil(1) { _ = try lua.checkString(1) }
            lua.push(true)
            return 1
        }
        table.table("dhcp") { dhcp in
            dhcp.function("config") { lua throws(LuaError) in
                guard lua.type(at: 1) == .table else { throw .argument(1, "wrong arg type") }
                var start = "192.168.4.2"
                if lua.getField("start", in: 1) != .nil_, let text = lua.string(at: -1) { start = text }
                lua.pop()
                guard let first = Self.parseIPv4(start) else { throw .argument(1, "wrong arg type") }
                let last = first + 99
                lua.push(start)
                lua.push([24, 16, 8, 0].map { String((last >> UInt32($0)) & 0xFF) }.joined(separator: "."))
                return 2
            }
            dhcp.function("start") { lua throws(LuaError) in lua.push(true); return 1 }
            dhcp.function("stop") { lua throws(LuaError) in lua.push(true); return 1 }
        }
    }

    /// Lua: wifi.ap.config(cfg) → true — `{ssid, pwd, auth, channel, hidden, max,
    /// beacon, save, staconnected_cb, stadisconnected_cb, probereq_cb}`
    private func apConfig(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard lua.type(at: 1) == .table else { throw .argument(1, "config table not found!") }
        var config = radio.softAP
        guard lua.getField("ssid", in: 1) != .nil_, let ssid = lua.bytes(at: -1) else {
            lua.pop()
            throw .argument(1, "ssid: not string")
        }
        lua.pop()
        guard (1...32).contains(ssid.count) else { throw .argument(1, "ssid: length:1-32") }
        config.ssid = ssid
        if lua.getField("pwd", in: 1) != .nil_, let pwd = lua.bytes(at: -1) {
            guard (8...64).contains(pwd.count) else { lua.pop(); throw .argument(1, "pwd: length:0 or 8-64") }
            config.password = pwd
            config.authMode = 4
        } else {
            config.password = []
            config.authMode = 0
        }
        lua.pop()
        for (key, apply) in [("auth", { (v: Int) in config.authMode = v }), ("channel", { config.channel = $0 }),
                             ("max", { config.maxConnections = $0 }), ("beacon", { config.beaconInterval = $0 }),
                             ("hidden", { config.hidden = $0 != 0 })] as [(String, (Int) -> Void)] {
            if lua.getField(key, in: 1) == .number || lua.type(at: -1) == .boolean {
                apply(lua.type(at: -1) == .boolean ? (lua.boolean(at: -1) ? 1 : 0) : lua.integer(at: -1) ?? 0)
            }
            lua.pop()
        }
        for (field, event) in [("staconnected_cb", 5), ("stadisconnected_cb", 6), ("probereq_cb", 7)] {
            if lua.getField(field, in: 1) != .nil_ { setEventCallback(event, from: -1, on: lua) }
            lua.pop()
        }
        radio.softAP = config
        lua.push(true)
        return 1
    }

    /// Lua: wifi.ap.getconfig([return_table]) → ssid, pwd; or {ssid, pwd, auth, channel, hidden, max, beacon}
    private func apGetconfig(_ lua: LuaState) -> Int32 {
        let config = radio.softAP
        if lua.boolean(at: 1) {
            lua.newTable(fieldCapacity: 7)
            lua.push(config.ssid)
            lua.setField("ssid", in: -2)
            if !config.password.isEmpty {
                lua.push(config.password)
                lua.setField("pwd", in: -2)
            }
            for (key, value) in [("auth", config.authMode), ("channel", config.channel),
                                 ("max", config.maxConnections), ("beacon", config.beaconInterval)] {
                lua.push(value)
                lua.setField(key, in: -2)
            }
            lua.push(config.hidden)
            lua.setField("hidden", in: -2)
            return 1
        }
        lua.push(config.ssid)
        if config.password.isEmpty { lua.pushNil() } else { lua.push(config.password) }
        return 2
    }

    /// Lua: wifi.ap.getip() → ip, netmask, gateway, or nil outside soft-AP mode
    private func apGetip(_ lua: LuaState) -> Int32 {
        guard radio.mode.hasSoftAP else {
            lua.pushNil()
            return 1
        }
        let address = radio.softAPAddress
        lua.push(address.ip)
        lua.push(address.netmask)
        lua.push(address.gateway)
        return 3
    }

    /// Lua: wifi.ap.getclient() → {[mac] = ip} of the stations on the soft-AP
    private func apGetclient(_ lua: LuaState) -> Int32 {
        lua.newTable()
        for client in radio.softAPClients {
            lua.push(client.ip)
            lua.setField(client.mac, in: -2)
        }
        return 1
    }
}
