import HostNet
import LuaBridge
import NIOCore

/// Lua: a `net.tcpserver` (spec §4.3): `listen`, `getaddr`, `close`.
///
/// Accept order (spec §4.3, firmware `net_accept_cb`): for each accepted connection
/// the listen callback runs with the new socket first; the socket's `connection`
/// callback follows when its channel becomes active, so handlers set inside the listen
/// callback see it. The server timeout is TCP keepalive for accepted sockets (idle =
/// timeout, one probe, 10 s interval), not an idle timeout.
///
/// Listening sockets bind to 127.0.0.1 unless the host runs with `--expose`; privileged
/// or `--remap`-named ports are mapped to free ones (HostNet reports the mapping).
final class NetServer: LuaHandle {
    enum Event: Int, LuaHandleEvent {
        case accept
    }

    unowned let module: NetModule
    /// Keepalive idle seconds for accepted sockets.
    let timeout: Int
    private(set) var listening = false
    private var listener: HostListener?
    /// What the script asked for (getaddr reports it).
    private var devicePort = 0
    private var requestedIP = "0.0.0.0"
    /// Where the host really listens.
    private var hostPort: Int?
    /// Increments with each listen and close: a late bind result of an older one is dropped.
    private var round = 0

    init(module: NetModule, timeout: Int) {
        self.module = module
        self.timeout = timeout
        super.init(runtime: module.runtime, callbackSlots: Event.allCases.count)
    }

    static var methods: [(String, LuaObjectType<NetServer>.Method)] { [
        ("listen", { s, lua throws(LuaError) in try s.listen(lua) }),
        ("getaddr", { s, lua throws(LuaError) in s.getaddr(lua) }),
        ("close", { s, lua throws(LuaError) in try s.close(lua) }),
        ("on", { _, _ throws(LuaError) in throw .message("invalid user data") }),
    ] }

    /// Lua: srv:listen([port][, ip], fn)
    func listen(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard !listening else { throw .message("already listening") }
        let (port, ip, index) = lua.netListenArguments()
        guard let address = HostNetwork.ipv4Literal(ip) else { throw .message("invalid IP address") }
        guard lua.isFunction(index) else { throw .message("need callback") }
        setCallback(Event.accept, from: index, on: lua)

        round += 1
        let current = round
        let network = runtime.network
        let bound: (address: SocketAddress, listener: EventLoopFuture<HostListener>)
        do {
            bound = try network.listenNow(
                port: port, keepalive: TCPKeepalive(idle: timeout, interval: 10, count: 1),
                childInitializer: { channel in
                    try channel.pipeline.syncOperations.addHandler(NetStreamHandler(network: network))
                },
                accepted: { [weak self] channel in self?.accepted(channel, round: current) })
        } catch {
            // tcp_bind's ERR_USE; anything else the host cannot do is reported the same way.
            throw .message(NetModule.errorText(-13))
        }
        let future = bound.listener
        hostPort = bound.address.port
        devicePort = port
        requestedIP = address
        listening = true
        hold(userdataAt: 1, on: lua)
        future.assumeIsolated().whenComplete { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let listener):
                guard round == current, listening else {
                    listener.close()
                    return
                }
                self.listener = listener
            case .failure(let error):
                guard round == current, listening else { return }
                runtime.diagnostic("net: cannot listen on port \(port): \(HostConnectError.describe(error))")
                listening = false
                if runtime.isCurrent(generation) { unhold(on: runtime.lua) }
            }
        }
        return 0
    }

    /// A connection was accepted: a new socket, then the listen callback with it.
    private func accepted(_ channel: any Channel, round current: Int) {
        guard runtime.isCurrent(generation), listening, round == current,
              let handler = try? channel.pipeline.syncOperations.handler(type: NetStreamHandler.self),
              let acceptCallback = callback(Event.accept) else {
            channel.close(promise: nil)
            return
        }
        let lua = runtime.lua
        module.trace("net: accepted \(channel.remoteAddress?.description ?? "?") on port \(devicePort)")
        let socket = NetSocket(module: module, kind: .tcp)
        socket.adopt(handler)
        lua.push(acceptCallback)
        module.socketType.push(socket, on: lua)
        // Accepted sockets are held from acceptance (spec §4.2).
        socket.hold(userdataAt: -1, on: lua)
        runtime.callback(.network, arguments: 1)
    }

    /// Lua: srv:getaddr() — `port, ip`, or nil, nil when not listening.
    func getaddr(_ lua: LuaState) -> Int32 {
        // Port 0 asks for any free port: report the one the host got.
        // Port 0 asks for any free port: report the one the host got.
        lua.pushNetAddress(port: listening ? (devicePort != 0 ? devicePort : hostPort) : nil, ip: requestedIP)
    }

    /// Lua: srv:close() — stops listening; accepted sockets stay open.
    func close(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard listening else { throw .message("not connected") }
        stop()
        unhold(on: lua)
        return 0
    }

    private func stop() {
        round += 1
        listening = false
        listener?.close()
        listener = nil
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
