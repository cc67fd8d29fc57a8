import HostNet
import LuaBridge
import NIOCore

/// Lua: a `net.tcpsocket` (spec §4.2) — and, with `kind == .tls`, a `tls.socket`
/// (spec §4.5), which is the same connection with TLS and a few different method
/// contracts (`getpeer` order, string reasons, `send` without a callback).
///
/// Its Lua methods are here; connection events become callbacks in `+Events`.
/// Followed: the spec; for what it leaves open, `app/modules/net.c` and
/// `app/modules/tls.c` of nodemcu/nodemcu-firmware (check order in `connect`, `on`,
/// `send`; the callback chosen in `net_err_cb`; self reference released after it).
final class NetSocket: LuaHandle {
    enum Event: Int, LuaHandleEvent {
        case connection, reconnection, disconnection, receive, sent, dns
    }

    enum Kind { case tcp, tls }
    enum State { case idle, connecting, connected }

    /// What happened on the connection; delivered outside API calls, in order.
    enum Happening {
        case dns(String?)
        case connected
        case received(ByteBuffer)
        case sent
        /// The connection is over: lwIP code (0 = remote FIN) and, for TLS, the reason.
        case ended(code: Int, reason: String?)
    }

    /// lwIP's send buffer: 2 × TCP_MSS (spec §4.2).
    static let sendBufferSize = 2 * 1460
    /// The largest piece one `receive` callback gets (one lwIP segment).
    static let segmentSize = 1460
    /// How long a TCP connect (or TLS handshake) may take.
    static let connectTimeout = TimeAmount.seconds(20)

    unowned let module: NetModule
    let kind: Kind
    var state = State.idle
    /// The connection's handler while connecting or connected.
    var stream: NetStreamHandler?
    /// Increments with each connect and close: results of an older attempt are dropped.
    var attempt = 0
    /// Bytes passed to `send()` whose `sent` has not fired (spec §4.2's rule).
    var outstanding = 0
    /// Name lookups in flight (`s:dns`, `s:connect` with a name).
    var pendingLookups = 0
    /// `hold()` in force.
    var readingHeld = false
    let events: DeferredEvents<Happening>

    init(module: NetModule, kind: Kind) {
        self.module = module
        self.kind = kind
        self.events = DeferredEvents(eventLoop: module.runtime.eventLoop)
        super.init(runtime: module.runtime, callbackSlots: Event.allCases.count)
        events.handler = { [unowned self] in deliver($0) }
    }

    var profile: FirmwareProfile { runtime.profile }
    var isTLS: Bool { kind == .tls }
    /// Keeps itself (and the process) alive while connecting, connected or resolving.
    var isActive: Bool { state != .idle || pendingLookups > 0 }

    /// The methods of `net.tcpsocket`.
    static var netMethods: [(String, LuaObjectType<NetSocket>.Method)] { [
        ("connect", { s, lua throws(LuaError) in try s.connect(lua) }),
        ("close", { s, lua throws(LuaError) in try s.close(lua) }),
        ("on", { s, lua throws(LuaError) in try s.on(lua) }),
        ("send", { s, lua throws(LuaError) in try s.send(lua) }),
        ("hold", { s, lua throws(LuaError) in s.hold(lua) }),
        ("unhold", { s, lua throws(LuaError) in s.unhold(lua) }),
        ("dns", { s, lua throws(LuaError) in try s.dns(lua) }),
        ("ttl", { s, lua throws(LuaError) in try s.ttl(lua) }),
        ("getpeer", { s, lua throws(LuaError) in s.getpeer(lua) }),
        ("getaddr", { s, lua throws(LuaError) in s.getaddr(lua) }),
    ] }

    /// The methods of `tls.socket`: net's without `ttl` and `getaddr`.
    static var tlsMethods: [(String, LuaObjectType<NetSocket>.Method)] {
        netMethods.filter { $0.0 != "ttl" && $0.0 != "getaddr" }
    }

    // MARK: connect

    /// Lua: s:connect(port[, host][, fn]) (net) / s:connect(port, host) (tls)
    func connect(_ lua: LuaState) throws(LuaError) -> Int32 {
        if state != .idle { throw .message("already connected") }
        let port = try lua.checkInteger(2)
        var host = "127.0.0.1"
        if isTLS {
            guard (1...65535).contains(port) else { throw .message("invalid port") }
            host = try lua.checkString(3)
        } else {
            guard port & 0xFFFF != 0 else { throw .message("specify port") }
            if lua.isStringLike(3) { host = lua.string(at: 3) ?? host }
            if lua.top > 3 {
                guard lua.isFunction(4) else { throw .argument(4, "not a function") }
                setCallback(Event.connection, from: 4, on: lua)
            }
        }
        events.apiScope { begin(host: host, port: port & 0xFFFF, on: lua) }
        return 0
    }

    private func begin(host: String, port: Int, on lua: LuaState) {
        attempt += 1
        let current = attempt
        state = .connecting
        hold(userdataAt: 1, on: lua)
        if let ip = HostNetwork.ipv4Literal(host) {
            // An IP literal resolves inside the call, dns callback included (spec §1.1).
            callDNSNow(ip, on: lua)
            startTransport(host: ip, port: port, attempt: current)
            return
        }
        pendingLookups += 1
        runtime.network.resolveIPv4(host: host).assumeIsolated().whenSuccess { [weak self] ip in
            guard let self, runtime.isCurrent(generation) else { return }
            pendingLookups -= 1
            events.append(.dns(ip))
            if attempt == current && state == .connecting {
                if ip == nil {
                    // The firmware connects to 255.255.255.255, which never answers: the
                    // attempt ends as an aborted connection.
                    ended(code: -8, reason: "DNS lookup failed", attempt: current)
                } else {
                    // The name again, so that host:port remap rules apply.
                    startTransport(host: host, port: port, attempt: current)
                }
            }
            events.drainIfPossible()
        }
    }

    /// The dns callback inside the API call (IP literals).
    func callDNSNow(_ ip: String, on lua: LuaState) {
        guard pushCallback(Event.dns, on: lua) else { return }
        lua.push(ip)
        runtime.callback(.network, arguments: 2)
    }

    private func startTransport(host: String, port: Int, attempt current: Int) {
        module.trace("\(isTLS ? "tls" : "net"): connect \(host):\(port)")
        let tls = isTLS ? TLSModule.settings(runtime: runtime) : nil
        let network = runtime.network
        network.connect(host: host, port: port, tls: tls, timeout: Self.connectTimeout) { [weak self] channel in
            let handler = NetStreamHandler(network: network)
            handler.socket = self
            handler.attempt = current
            try channel.pipeline.syncOperations.addHandler(handler)
        }.assumeIsolated().whenComplete { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let channel):
                if attempt != current { channel.close(promise: nil) }
            case .failure(let error):
                guard attempt == current, state == .connecting else { return }
                let failure = error as? HostConnectError ?? HostConnectError(.refused, reason: "\(error)")
                if isTLS || failure.kind == .tls {
                    runtime.diagnostic("tls: secure connection failed: \(failure.reason)")
                }
                ended(code: Self.code(forFailure: failure), reason: Self.tlsReason(forFailure: failure), attempt: current)
                events.drainIfPossible()
            }
        }
    }

    /// lwIP's code for a failed connect: a refused SYN is reset (ERR_RST), a connect
    /// that never completes is aborted (ERR_ABRT, lwIP's SYN retries running out).
    static func code(forFailure failure: HostConnectError) -> Int {
        switch failure.kind {
        case .refused: -9
        case .dnsFailure, .timeout, .tls: -8
        }
    }

    /// The reason string of a `tls.socket`'s reconnection callback.
    static func tlsReason(forFailure failure: HostConnectError) -> String {
        switch failure.kind {
        case .refused: "Connection reset"
        case .timeout: "Timeout"
        case .dnsFailure: "DNS lookup failed"
        case .tls: "SSL handshake failed"
        }
    }

    // MARK: on

    /// Lua: s:on(event, fn)
    func on(_ lua: LuaState) throws(LuaError) -> Int32 {
        if isTLS && profile == .v2_2 {
            guard lua.isFunction(3) else { throw lua.typeError(3, expected: "function or lightfunction") }
        }
        return try setNetCallback(Event.self, on: lua, unknownEvent: isTLS ? "invalid method" : "invalid callback name")
    }

    // MARK: send

    /// Lua: s:send(data[, fn]) (net) / s:send(data) (tls)
    func send(_ lua: LuaState) throws(LuaError) -> Int32 {
        if isTLS {
            guard let data = lua.bytes(at: 2) else { throw lua.typeError(2, expected: "string") }
            // tls: silently nothing when not connected.
            guard state == .connected, let stream, !data.isEmpty else { return 0 }
            outstanding += data.count
            stream.send(data)
            return 0
        }
        guard let data = lua.bytes(at: 2) else { throw lua.typeError(2, expected: "string") }
        guard !data.isEmpty else { throw .message("no data to send") }
        if lua.isFunction(3) { setCallback(Event.sent, from: 3, on: lua) }
        guard state == .connected, let stream else { throw .message("not connected") }
        // lwIP's tcp_write fails with ERR_MEM when the data does not fit into what is
        // left of the send buffer (spec §4.2: scripts chain sends from `sent`).
        guard outstanding + data.count <= Self.sendBufferSize else { throw .message(NetModule.errorText(-1)) }
        outstanding += data.count
        stream.send(data)
        return 0
    }

    // MARK: close

    /// Lua: s:close() — no disconnection callback for a local close.
    func close(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard state != .idle else {
            // tls: closing a socket that has no connection is harmless.
            if isTLS { return 0 }
            throw .message("not connected")
        }
        attempt += 1
        state = .idle
        outstanding = 0
        readingHeld = false
        if let stream {
            stream.closeLocally()
            self.stream = nil
        }
        if !isActive { unhold(on: lua) }
        return 0
    }

    // MARK: hold, unhold, dns, ttl, getpeer, getaddr

    /// Lua: s:hold() — stops reading, so the peer's window closes.
    func hold(_ lua: LuaState) -> Int32 {
        if !readingHeld, let channel = stream?.channel {
            readingHeld = true
            runtime.network.setReading(channel, false)
        }
        return 0
    }

    /// Lua: s:unhold()
    func unhold(_ lua: LuaState) -> Int32 {
        if readingHeld, let channel = stream?.channel {
            readingHeld = false
            runtime.network.setReading(channel, true)
        }
        return 0
    }

    /// Lua: s:dns(host, fn) — fn(s, ip or nil) becomes the sticky dns callback.
    func dns(_ lua: LuaState) throws(LuaError) -> Int32 {
        let host = try lua.checkString(2)
        setCallback(Event.dns, from: 3, on: lua)
        guard callback(Event.dns) != nil else { throw .message("no callback specified") }
        hold(userdataAt: 1, on: lua)
        if let ip = HostNetwork.ipv4Literal(host) {
            callDNSNow(ip, on: lua)
            if !isActive { unhold(on: lua) }
            return 0
        }
        pendingLookups += 1
        runtime.network.resolveIPv4(host: host).assumeIsolated().whenSuccess { [weak self] ip in
            guard let self, runtime.isCurrent(generation) else { return }
            pendingLookups -= 1
            events.append(.dns(ip))
            events.drainIfPossible()
        }
        return 0
    }

    /// Lua: s:ttl([ttl]) — the IP time-to-live, after setting it.
    func ttl(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard let channel = stream?.channel else { throw .message("socket is not open/bound yet") }
        let value = try lua.optionalInteger(2, default: -1)
        lua.push(runtime.network.timeToLive(channel, set: value == -1 ? nil : value) ?? 0)
        return 1
    }

    /// Lua: s:getpeer() — `port, ip` (net) / `ip, port` (tls), or nil, nil.
    func getpeer(_ lua: LuaState) -> Int32 {
        guard state != .idle, let address = stream?.channel?.remoteAddress,
              let port = address.port, let ip = address.ipAddress else {
            lua.pushNil()
            lua.pushNil()
            return 2
        }
        if isTLS {
            lua.push(ip)
            lua.push(port)
        } else {
            lua.push(port)
            lua.push(ip)
        }
        return 2
    }

    /// Lua: s:getaddr() — local `port, ip`, or nil, nil.
    func getaddr(_ lua: LuaState) -> Int32 {
        let address = stream?.channel?.localAddress
        return lua.pushNetAddress(port: address?.port, ip: address?.ipAddress)
    }

    // MARK: Teardown

    override func abortForReboot() {
        attempt += 1
        state = .idle
        stream?.abort()
        stream = nil
        events.removeAll()
        super.abortForReboot()
    }

    override func dispose(on lua: LuaState) {
        attempt += 1
        state = .idle
        stream?.abort()
        stream = nil
        events.removeAll()
        super.dispose(on: lua)
    }
}
