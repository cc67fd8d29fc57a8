import HostNet
import LuaBridge
import NIOCore

/// Lua: the `net` module (behaviour spec §4.1–§4.4), profiles 2.2 and 3.0: the
/// constructors, `net.dns.*`, multicast, `net.ifinfo` (3.0), the constants and the
/// `net.cert` alias of `tls.cert`. The handles are `NetSocket` (`net.tcpsocket`),
/// `NetServer` (`net.tcpserver`) and `UDPSocket` (`net.udpsocket`).
///
/// Followed: the spec; for what it leaves open, the firmware's `app/modules/net.c`
/// (nodemcu/nodemcu-firmware: order of the argument checks, `net_dns_static`,
/// `net_multicastJoinLeave`, `lwip_lua_checkerr`) and `docs/modules/net.md`.
public final class NetModule: LuaModule {
    public static let name = "net"

    static let tcp = 1
    static let udp = 2

    unowned let runtime: Runtime
    let socketType: LuaObjectType<NetSocket>
    let serverType: LuaObjectType<NetServer>
    let udpType: LuaObjectType<UDPSocket>
    var profile: FirmwareProfile { runtime.profile }

    /// `net.dns.setdnsserver`: recorded and reported back; the host's resolver decides.
    var dnsServers: [String?] = [nil, nil]
    /// `net.multicastJoin` groups (interface IP, group IP): applied to every UDP socket,
    /// as lwIP's IGMP membership applies to the whole interface.
    var multicastGroups: [(interface: String, group: String)] = []
    /// Bound UDP sockets, for multicast membership.
    var udpSockets: [ObjectIdentifier: Weak<UDPSocket>] = [:]

    public init(runtime: Runtime) {
        self.runtime = runtime
        socketType = LuaObjectType(name: "net.tcpsocket", in: runtime.lua, methods: NetSocket.netMethods) { lua, socket in
            socket.dispose(on: lua)
        }
        serverType = LuaObjectType(name: "net.tcpserver", in: runtime.lua, methods: NetServer.methods) { lua, server in
            server.dispose(on: lua)
        }
        udpType = LuaObjectType(name: "net.udpsocket", in: runtime.lua, methods: UDPSocket.methods) { lua, socket in
            socket.dispose(on: lua)
        }
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("createConnection") { [unowned self] lua throws(LuaError) in try createConnection(lua) }
        table.function("createServer") { [unowned self] lua throws(LuaError) in try createServer(lua) }
        table.function("createUDPSocket") { [unowned self] lua throws(LuaError) in createUDPSocket(lua) }
        table.function("multicastJoin") { [unowned self] lua throws(LuaError) in try multicast(lua, join: true) }
        table.function("multicastLeave") { [unowned self] lua throws(LuaError) in try multicast(lua, join: false) }
        if profile == .v3_0 {
            table.function("ifinfo") { [unowned self] lua throws(LuaError) in try ifinfo(lua) }
        }
        var dns = LuaModuleTable()
        dns.function("resolve") { [unowned self] lua throws(LuaError) in try resolve(lua) }
        dns.function("setdnsserver") { [unowned self] lua throws(LuaError) in try setDNSServer(lua) }
        dns.function("getdnsserver") { [unowned self] lua throws(LuaError) in try getDNSServer(lua) }
        table.table("dns", dns)
        // The firmware's net.cert is tls.cert's function table.
        table.table("cert", TLSModule.certTable(runtime: runtime))
        table.integer("TCP", Self.tcp)
        table.integer("UDP", Self.udp)
    }

    // MARK: Diagnostics

    func warn(_ message: String, on lua: LuaState) {
        runtime.quirkWarnings.warn(message + " (firmware \(profile.rawValue))", on: lua)
    }

    /// `--trace`: one stderr line per socket event of net, tls and http.
    func trace(_ line: @autoclosure () -> String) {
        if runtime.options.trace { runtime.diagnostic("trace: \(line())") }
    }

    func deprecation(_ what: String) {
        runtime.print("Warning, deprecated API! \(what). It will be removed in next version. See documentation for details.")
    }

    /// The text of an lwIP error code, as `lwip_lua_checkerr` raises it (spec §4.4).
    static func errorText(_ code: Int) -> String {
        switch code {
        case -1: "out of memory"
        case -2: "buffer error"
        case -3: "timeout"
        case -4: "routing problem"
        case -5: "in progress"
        case -6: "illegal value"
        case -7: "would block"
        case -8: "connection aborted"
        case -9: "connection reset"
        case -10: "connection closed"
        case -11: "not connected"
        case -12: "illegal argument"
        case -13: "address in use"
        case -14: "netif error"
        case -15: "already connected"
        default: "unknown error"
        }
    }

    // MARK: Constructors

    /// Lua: net.createConnection([type[, secure]]) — 3.0 ignores both arguments.
    private func createConnection(_ lua: LuaState) throws(LuaError) -> Int32 {
        if profile == .v3_0 {
            let type = lua.integer(at: 1)
            let secure = lua.integer(at: 2) ?? 0
            if (!lua.isNoneOrNil(1) && type != Self.tcp) || secure != 0 {
                warn("net.createConnection: arguments are ignored: this is a plain TCP socket (UDP or TLS is not made)", on: lua)
            }
            socketType.push(NetSocket(module: self, kind: .tcp), on: lua)
            return 1
        }
        let type = try lua.optionalInteger(1, default: Self.tcp)
        let secure = try lua.optionalInteger(2, default: 0)
        if type == Self.udp {
            deprecation("net.createConnection with net.UDP type")
            return createUDPSocket(lua)
        }
        guard type == Self.tcp else { throw .message("invalid type") }
        if secure != 0 {
            deprecation("net.createConnection with secure flag")
            guard let tls = runtime.modules[TLSModule.self] else { throw .message("secure connections not enabled") }
            tls.socketType.push(NetSocket(module: self, kind: .tls), on: lua)
            return 1
        }
        socketType.push(NetSocket(module: self, kind: .tcp), on: lua)
        return 1
    }

    /// Lua: net.createServer([type[, timeout]]) (2.2) / net.createServer([timeout]) (3.0)
    private func createServer(_ lua: LuaState) throws(LuaError) -> Int32 {
        if profile == .v3_0 {
            let timeout = try lua.optionalInteger(1, default: 30)
            if !lua.isNoneOrNil(1) && (timeout == Self.tcp || timeout == Self.udp) || !lua.isNoneOrNil(2) {
                warn("net.createServer: argument 1 is the timeout, not the type: the keepalive idle time becomes \(timeout) s", on: lua)
            }
            serverType.push(NetServer(module: self, timeout: timeout), on: lua)
            return 1
        }
        let type = try lua.optionalInteger(1, default: Self.tcp)
        let timeout = try lua.optionalInteger(2, default: 30)
        if type == Self.udp {
            deprecation("net.createServer with net.UDP type")
            return createUDPSocket(lua)
        }
        guard type == Self.tcp else { throw .message("invalid type") }
        serverType.push(NetServer(module: self, timeout: timeout), on: lua)
        return 1
    }

    /// Lua: net.createUDPSocket()
    private func createUDPSocket(_ lua: LuaState) -> Int32 {
        udpType.push(UDPSocket(module: self), on: lua)
        return 1
    }

    // MARK: DNS

    /// Lua: net.dns.resolve(host, fn) — fn(nil, ip or nil); an IP literal calls back
    /// inside the call.
    private func resolve(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard let host = lua.string(at: 1) else { throw lua.typeError(1, expected: "string") }
        guard lua.isFunction(2) else {
            throw lua.typeError(2, expected: profile == .v2_2 ? "function or lightfunction" : "function")
        }
        let callback = lua.ref(at: 2)
        let lookup = PendingLookup()
        runtime.retain(lookup)
        let generation = runtime.generation
        runtime.network.resolveIPv4(host: host).assumeIsolated().whenSuccess { [weak self] ip in
            guard let self else { return }
            runtime.release(lookup)
            guard runtime.isCurrent(generation) else { return }
            let lua = runtime.lua
            lua.push(callback)
            lua.unref(callback)
            lua.pushNil()
            if let ip { lua.push(ip) } else { lua.pushNil() }
            runtime.callback(.network, arguments: 2)
        }
        return 0
    }

    /// Lua: net.dns.setdnsserver(ip[, index])
    private func setDNSServer(_ lua: LuaState) throws(LuaError) -> Int32 {
        let text = try lua.checkString(1)
        guard text.utf8.count <= 16, let ip = HostNetwork.ipv4Literal(text), ip != "0.0.0.0" else {
            throw .message("invalid dns server ip")
        }
        let index = try lua.optionalInteger(2, default: 0)
        guard index < dnsServers.count else { throw .message("server index out of range [0-1]") }
        // Negative indexes reach the firmware's array unchecked; the host ignores them.
        if index >= 0 { dnsServers[index] = ip }
        return 0
    }

    /// Lua: net.dns.getdnsserver([index]) — the server set for the index, or nil.
    private func getDNSServer(_ lua: LuaState) throws(LuaError) -> Int32 {
        let index = try lua.optionalInteger(1, default: 0)
        guard index < dnsServers.count else { throw .message("server index out of range [0-1]") }
        if index >= 0, let ip = dnsServers[index] { lua.push(ip) } else { lua.pushNil() }
        return 1
    }

    // MARK: Multicast, interfaces

    /// Lua: net.multicastJoin(if_ip, multicast_ip) / net.multicastLeave(if_ip, multicast_ip)
    private func multicast(_ lua: LuaState, join: Bool) throws(LuaError) -> Int32 {
        guard lua.isStringLike(1) else { throw .message("wrong arg type") }
        var interface = lua.string(at: 1) ?? ""
        if interface.isEmpty || interface.lowercased() == "any" { interface = "0.0.0.0" }
        guard (7...15).contains(interface.utf8.count) else { throw .message("invalid if ip") }
        guard lua.isStringLike(2) else { throw .message("wrong arg type") }
        let group = lua.string(at: 2) ?? ""
        guard (7...15).contains(group.utf8.count) else { throw .message("invalid multicast ip") }
        // lwIP parses without complaint; a malformed address simply joins nothing.
        guard let groupIP = HostNetwork.ipv4Literal(group) else { return 0 }
        let interfaceIP = HostNetwork.ipv4Literal(interface) ?? "0.0.0.0"
        if join {
            if !multicastGroups.contains(where: { $0 == (interfaceIP, groupIP) }) {
                multicastGroups.append((interfaceIP, groupIP))
            }
        } else {
            multicastGroups.removeAll { $0 == (interfaceIP, groupIP) }
        }
        for socket in udpSockets.values.compactMap(\.value) {
            socket.applyMembership(interface: interfaceIP, group: groupIP, join: join)
        }
        return 0
    }

    /// Lua: net.ifinfo(index) (3.0) — the station (0) as the host sees it; nil for others.
    private func ifinfo(_ lua: LuaState) throws(LuaError) -> Int32 {
        let index = try lua.checkInteger(1)
        guard index == 0 else {
            lua.pushNil()
            return 1
        }
        lua.newTable(fieldCapacity: 3)
        for (key, value) in [("ip", "127.0.0.1"), ("netmask", "255.0.0.0"), ("gateway", "127.0.0.1")] {
            lua.push(value)
            lua.setField(key, in: -2)
        }
        return 1
    }
}

/// A name lookup in flight: keeps the process alive until its callback has run.
final class PendingLookup: RuntimeHandle {
    func abortForReboot() {}
}

/// A weak reference (for registries that must not keep their members alive).
struct Weak<Object: AnyObject> {
    weak var value: Object?
}
