import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension HostNetwork {
    /// Where a server for device port `port` really listens: 127.0.0.1 (all interfaces
    /// with `expose`), on a free port for a privileged port (below 1024, which needs root
    /// on the host) or a port a `--remap` rule names with `*` (its TO port if it gives
    /// one), else on the same port. Port 0 means any free port, as on the device.
    public func listenAddress(forDevicePort port: Int) -> (host: String, port: Int, remapped: Bool) {
        let host = configuration.expose ? "0.0.0.0" : "127.0.0.1"
        let rule = remap.listenTarget(port: port)
        if rule.named { return (host, rule.hostPort ?? 0, true) }
        if port > 0 && port < 1024 { return (host, 0, true) }
        return (host, port, false)
    }

    /// Listens for TCP connections on device port `port` (see `listenAddress`). Each
    /// accepted channel gets the capture handler, then the handlers `childInitializer`
    /// adds; `accepted` receives it, in accept order, when it becomes active. A remapped
    /// port is reported once through `diagnostics`. With `keepalive`, accepted
    /// connections get those TCP keepalive settings.
    public func listen(
        port: Int, backlog: Int32 = 128, keepalive: TCPKeepalive? = nil,
        childInitializer: @escaping (any Channel) throws -> Void,
        accepted: @escaping (any Channel) -> Void
    ) -> EventLoopFuture<HostListener> {
        eventLoop.preconditionInEventLoop()
        let target = listenAddress(forDevicePort: port)
        return serverBootstrap(devicePort: port, backlog: backlog, keepalive: keepalive, childInitializer: childInitializer, accepted: accepted)
            .bind(host: target.host, port: target.port)
            .assumeIsolated()
            .flatMapThrowing { channel in try self.makeListener(channel, devicePort: port, remapped: target.remapped) }
            .nonisolated()
    }

    /// `listen`, with the socket bound inside the call: a port in use throws here (an
    /// `IOError`, e.g. EADDRINUSE) and the address is known at once (port 0 included),
    /// as a device's `tcp_bind` reports synchronously. The listener follows once NIO
    /// has registered the socket; connections that arrive meanwhile wait in the backlog.
    public func listenNow(
        port: Int, backlog: Int32 = 128, keepalive: TCPKeepalive? = nil,
        childInitializer: @escaping (any Channel) throws -> Void,
        accepted: @escaping (any Channel) -> Void
    ) throws -> (address: SocketAddress, listener: EventLoopFuture<HostListener>) {
        eventLoop.preconditionInEventLoop()
        let target = listenAddress(forDevicePort: port)
        let (socket, address) = try Self.boundSocket(stream: true, host: target.host, port: target.port)
        if target.remapped { reportListenPort(port, address) }
        let listener = serverBootstrap(devicePort: port, backlog: backlog, keepalive: keepalive, childInitializer: childInitializer, accepted: accepted)
            .withBoundSocket(socket)
            .assumeIsolated()
            .flatMapThrowing { channel in try self.makeListener(channel, devicePort: port, remapped: false) }
            .nonisolated()
        return (address, listener)
    }

    private func makeListener(_ channel: any Channel, devicePort port: Int, remapped: Bool) throws -> HostListener {
        guard let address = channel.localAddress else {
            channel.close(promise: nil)
            throw ChannelError.unknownLocalAddress
        }
        if remapped { reportListenPort(port, address) }
        return HostListener(devicePort: port, localAddress: address, channel: channel)
    }

    private func serverBootstrap(
        devicePort: Int, backlog: Int32, keepalive: TCPKeepalive?,
        childInitializer: @escaping (any Channel) throws -> Void,
        accepted: @escaping (any Channel) -> Void
    ) -> ServerBootstrap {
        let capture = self.capture
        let boundFaults = faults.map { NIOLoopBound($0, eventLoop: eventLoop) }
        let boundInitializer = NIOLoopBound(childInitializer, eventLoop: eventLoop)
        let boundAccepted = NIOLoopBound(accepted, eventLoop: eventLoop)
        var bootstrap = ServerBootstrap(group: eventLoop)
        if let keepalive {
            bootstrap = bootstrap
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                .childChannelOption(.tcpOption(.init(rawValue: TCP_KEEPIDLE)), value: SocketOptionValue(max(1, keepalive.idle)))
                .childChannelOption(.tcpOption(.init(rawValue: TCP_KEEPINTVL)), value: SocketOptionValue(max(1, keepalive.interval)))
                .childChannelOption(.tcpOption(.init(rawValue: TCP_KEEPCNT)), value: SocketOptionValue(max(1, keepalive.count)))
        }
        return bootstrap
            .serverChannelOption(.backlog, value: backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.recvAllocator, value: Self.receiveAllocator)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let capture { try sync.addHandler(capture.makeHandler(mode: .server)) }
                    if let boundFaults {
                        let peer = channel.remoteAddress
                        try sync.addHandler(boundFaults.value.makeHandler(FaultInjector.Endpoint(
                            host: peer?.ipAddress ?? "?", port: devicePort, targetHost: peer?.ipAddress ?? "?",
                            targetPort: channel.localAddress?.port ?? devicePort, accepted: true)))
                    }
                    try sync.addHandler(AcceptNotifier(accepted: boundAccepted.value))
                    try boundInitializer.value(channel)
                }
            }
    }

    /// A socket bound (address reuse on) to `host:port` now, and the address it got.
    static func boundSocket(stream: Bool, host: String, port: Int) throws -> (NIOBSDSocket.Handle, SocketAddress) {
        let address = try SocketAddress(ipAddress: host, port: port)
        #if canImport(Glibc)
        let type = Int32(stream ? SOCK_STREAM.rawValue : SOCK_DGRAM.rawValue)
        #else
        let type = stream ? SOCK_STREAM : SOCK_DGRAM
        #endif
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = sockaddr_in()
        storage.sin_family = sa_family_t(AF_INET)
        storage.sin_port = in_port_t(UInt16(port).bigEndian)
        _ = inet_pton(AF_INET, host, &storage.sin_addr)
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw IOError(errnoCode: code, reason: "bind")
        }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let actual = try SocketAddress(ipAddress: host, port: Int(UInt16(bigEndian: local.sin_port)))
        _ = address
        return (fd, actual)
    }

    /// Binds a UDP socket for device port `port`, mapped like `listen`'s ports (0: any
    /// free port). With `--pcap`, its datagrams are captured (`UDPCaptureHandler`, first
    /// in the pipeline, before `initializer`'s handlers).
    public func bindUDP(
        port: Int, initializer: @escaping (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        eventLoop.preconditionInEventLoop()
        let target = listenAddress(forDevicePort: port)
        let boundInitializer = NIOLoopBound(initializer, eventLoop: eventLoop)
        let capture = self.capture
        return DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.addDatagramCapture(capture, to: channel)
                    try boundInitializer.value(channel)
                }
            }
            .bind(host: target.host, port: target.port)
            .assumeIsolated()
            .map { channel in
                if target.remapped, let address = channel.localAddress {
                    self.reportListenPort(port, address, udp: true)
                }
                return channel
            }
            .nonisolated()
    }

    /// `bindUDP`, with the socket bound inside the call (errors throw here, the address
    /// is known at once); the channel follows once NIO has registered it. Captured by
    /// `--pcap` as `bindUDP`.
    public func bindUDPNow(
        port: Int, initializer: @escaping (any Channel) throws -> Void
    ) throws -> (address: SocketAddress, channel: EventLoopFuture<any Channel>) {
        eventLoop.preconditionInEventLoop()
        let target = listenAddress(forDevicePort: port)
        let (socket, address) = try Self.boundSocket(stream: false, host: target.host, port: target.port)
        if target.remapped { reportListenPort(port, address, udp: true) }
        let boundInitializer = NIOLoopBound(initializer, eventLoop: eventLoop)
        let capture = self.capture
        let channel = DatagramBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.addDatagramCapture(capture, to: channel)
                    try boundInitializer.value(channel)
                }
            }
            .withBoundSocket(socket)
        return (address, channel)
    }

    /// With `--pcap`, puts the UDP capture first in a datagram channel's pipeline (next to
    /// the socket: it records what the socket really sends and receives).
    static func addDatagramCapture(_ capture: PacketCapture?, to channel: any Channel) throws {
        guard let capture else { return }
        try channel.pipeline.syncOperations.addHandler(capture.makeDatagramHandler())
    }

    private func reportListenPort(_ devicePort: Int, _ address: SocketAddress, udp: Bool = false) {
        guard reportedListenPorts.insert(udp ? -devicePort : devicePort).inserted else { return }
        let host = address.ipAddress ?? "?"
        diagnostics("listening \(udp ? "UDP " : "")port \(devicePort) is \(host):\(address.port ?? 0)")
    }
}
