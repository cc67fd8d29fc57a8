import HostNet
import LuaBridge
import NIOCore

/// Lua: a `net.udpsocket` (spec §4.3): `listen`, `send` (whose `sent` callback fires
/// inside the call, as the firmware's `net_send` calls it synchronously), `on`
/// (`receive`, `sent`, `dns`), `dns`, `ttl`, `getaddr`, `close`.
///
/// The first `send` binds an ephemeral port; datagrams sent before the bind has
/// completed wait for it. Destinations go through `--remap`.
final class UDPSocket: LuaHandle {
    enum Event: Int, LuaHandleEvent {
        case receive, sent, dns
    }

    unowned let module: NetModule
    /// Bound or binding.
    private(set) var bound = false
    private var channel: (any Channel)?
    /// Datagrams waiting for the bind.
    private var waiting: [AddressedEnvelope<ByteBuffer>] = []
    private var devicePort = 0
    private var requestedIP = "0.0.0.0"
    private var hostPort: Int?
    private var round = 0
    var pendingLookups = 0

    init(module: NetModule) {
        self.module = module
        super.init(runtime: module.runtime, callbackSlots: Event.allCases.count)
    }

    var isActive: Bool { bound || pendingLookups > 0 }

    static var methods: [(String, LuaObjectType<UDPSocket>.Method)] { [
        ("listen", { s, lua throws(LuaError) in try s.listen(lua) }),
        ("close", { s, lua throws(LuaError) in try s.close(lua) }),
        ("on", { s, lua throws(LuaError) in try s.on(lua) }),
        ("send", { s, lua throws(LuaError) in try s.send(lua) }),
        ("dns", { s, lua throws(LuaError) in try s.dns(lua) }),
        ("ttl", { s, lua throws(LuaError) in try s.ttl(lua) }),
        ("getaddr", { s, lua throws(LuaError) in s.getaddr(lua) }),
    ] }

    /// Lua: u:listen([port][, ip])
    func listen(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard !bound else { throw .message("already listening") }
        let (port, ip, _) = lua.netListenArguments()
        guard let address = HostNetwork.ipv4Literal(ip) else { throw .message("invalid IP address") }
        try bind(port: port, ip: address, on: lua)
        return 0
    }

    private func bind(port: Int, ip: String, on lua: LuaState) throws(LuaError) {
        let binding: (address: SocketAddress, channel: EventLoopFuture<any Channel>)
        do {
            binding = try runtime.network.bindUDPNow(port: port) { [weak self] channel in
                try channel.pipeline.syncOperations.addHandler(UDPReceiveHandler(socket: self))
            }
        } catch {
            throw .message(NetModule.errorText(-13))
        }
        hostPort = binding.address.port
        round += 1
        let current = round
        bound = true
        devicePort = port
        requestedIP = ip
        hold(userdataAt: 1, on: lua)
        binding.channel.assumeIsolated().whenComplete { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let channel):
                guard round == current, bound else {
                    channel.close(promise: nil)
                    return
                }
                self.channel = channel
                module.udpSockets[ObjectIdentifier(self)] = Weak(value: self)
                for (interface, group) in module.multicastGroups {
                    applyMembership(interface: interface, group: group, join: true)
                }
                for envelope in waiting { channel.write(envelope, promise: nil) }
                waiting.removeAll()
                channel.flush()
            case .failure(let error):
                guard round == current, bound else { return }
                runtime.diagnostic("net: cannot bind UDP port \(port): \(HostConnectError.describe(error))")
                bound = false
                waiting.removeAll()
                if runtime.isCurrent(generation), !isActive { unhold(on: runtime.lua) }
            }
        }
    }

    /// Lua: u:on(event, fn)
    func on(_ lua: LuaState) throws(LuaError) -> Int32 {
        try setNetCallback(Event.self, on: lua, unknownEvent: "invalid callback name")
    }

    /// Lua: u:send(port, ip, data[, fn]) — fn(u) runs inside the call.
    func send(_ lua: LuaState) throws(LuaError) -> Int32 {
        let port = try lua.checkInteger(2) & 0xFFFF
        guard port != 0 else { throw .message("need port") }
        let ip = try lua.checkString(3)
        guard let address = HostNetwork.ipv4Literal(ip) else { throw .message("invalid IP address") }
        let data = try lua.checkBytes(4)
        guard !data.isEmpty else { throw .message("no data to send") }
        if lua.isFunction(5) { setCallback(Event.sent, from: 5, on: lua) }
        guard let target = try? runtime.network.datagramTarget(ip: address, port: port) else {
            throw .message("invalid IP address")
        }
        if !bound { try bind(port: 0, ip: "0.0.0.0", on: lua) }
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        let envelope = AddressedEnvelope(remoteAddress: target, data: buffer)
        if let channel {
            channel.writeAndFlush(envelope, promise: nil)
        } else {
            waiting.append(envelope)
        }
        // The firmware calls `sent` synchronously after udp_sendto (spec §1.1).
        if pushCallback(Event.sent, on: lua) { runtime.callback(.network, arguments: 1) }
        return 0
    }

    /// Lua: u:dns(host, fn) — fn(u, ip or nil)
    func dns(_ lua: LuaState) throws(LuaError) -> Int32 {
        let host = try lua.checkString(2)
        setCallback(Event.dns, from: 3, on: lua)
        guard callback(Event.dns) != nil else { throw .message("no callback specified") }
        hold(userdataAt: 1, on: lua)
        if let ip = HostNetwork.ipv4Literal(host) {
            if pushCallback(Event.dns, on: lua) {
                lua.push(ip)
                runtime.callback(.network, arguments: 2)
            }
            if !isActive { unhold(on: lua) }
            return 0
        }
        pendingLookups += 1
        runtime.network.resolveIPv4(host: host).assumeIsolated().whenSuccess { [weak self] ip in
            guard let self, runtime.isCurrent(generation) else { return }
            pendingLookups -= 1
            let lua = runtime.lua
            if pushCallback(Event.dns, on: lua) {
                if let ip { lua.push(ip) } else { lua.pushNil() }
                runtime.callback(.network, arguments: 2)
            }
            if !isActive && !runtime.isFinished { unhold(on: lua) }
        }
        return 0
    }

    /// Lua: u:ttl([ttl])
    func ttl(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard bound else { throw .message("socket is not open/bound yet") }
        let value = try lua.optionalInteger(2, default: -1)
        let result = channel.flatMap { runtime.network.timeToLive($0, set: value == -1 ? nil : value) }
        lua.push(result ?? (value == -1 ? 64 : value))
        return 1
    }

    /// Lua: u:getaddr() — local `port, ip`, or nil, nil.
    func getaddr(_ lua: LuaState) -> Int32 {
        lua.pushNetAddress(port: bound ? (devicePort != 0 ? devicePort : hostPort) : nil, ip: requestedIP)
    }

    /// Lua: u:close()
    func close(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard bound else { throw .message("not connected") }
        stop()
        if !isActive { unhold(on: lua) }
        return 0
    }

    func received(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard runtime.isCurrent(generation), bound else { return }
        let lua = runtime.lua
        guard pushCallback(Event.receive, on: lua) else { return }
        envelope.data.withUnsafeReadableBytes { lua.push($0) }
        lua.push(envelope.remoteAddress.port ?? 0)
        lua.push(envelope.remoteAddress.ipAddress ?? "0.0.0.0")
        runtime.callback(.network, arguments: 4)
    }

    func applyMembership(interface: String, group: String, join: Bool) {
        guard let channel else { return }
        // Best effort, as igmp_joingroup's result is ignored by the firmware.
        _ = runtime.network.setMulticastMembership(channel, group: group, interfaceIP: interface, join: join)
    }

    private func stop() {
        round += 1
        bound = false
        waiting.removeAll()
        channel?.close(promise: nil)
        channel = nil
        module.udpSockets[ObjectIdentifier(self)] = nil
    }

    override func abortForReboot() {
        stop()
        super.abortForReboot()
    }

    override func dispose(on lua: LuaState) {
        stop()
        super.dispose(on: lua)
    }
}

/// Hands a UDP channel's datagrams to its socket.
final class UDPReceiveHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    weak var socket: UDPSocket?

    init(socket: UDPSocket?) {
        self.socket = socket
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        socket?.received(unwrapInboundIn(data))
    }
}
