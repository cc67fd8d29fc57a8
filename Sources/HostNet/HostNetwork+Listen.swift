import NIOCore
import NIOPosix

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
    /// port is reported once through `diagnostics`.
    public func listen(
        port: Int, backlog: Int32 = 128,
        childInitializer: @escaping (any Channel) throws -> Void,
        accepted: @escaping (any Channel) -> Void
    ) -> EventLoopFuture<HostListener> {
        eventLoop.preconditionInEventLoop()
        let target = listenAddress(forDevicePort: port)
        let capture = self.capture
        let boundInitializer = NIOLoopBound(childInitializer, eventLoop: eventLoop)
        let boundAccepted = NIOLoopBound(accepted, eventLoop: eventLoop)
        return ServerBootstrap(group: eventLoop)
            .serverChannelOption(.backlog, value: backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let capture { try sync.addHandler(capture.makeHandler(mode: .server)) }
                    try sync.addHandler(AcceptNotifier(accepted: boundAccepted.value))
                    try boundInitializer.value(channel)
                }
            }
            .bind(host: target.host, port: target.port)
            .assumeIsolated()
            .flatMapThrowing { channel in
                guard let address = channel.localAddress else {
                    channel.close(promise: nil)
                    throw ChannelError.unknownLocalAddress
                }
                if target.remapped { self.reportListenPort(port, address) }
                return HostListener(devicePort: port, localAddress: address, channel: channel)
            }
            .nonisolated()
    }

    /// Binds a UDP socket for device port `port`, mapped like `listen`'s ports (0: any
    /// free port). Not captured by `--pcap` (TCP only).
    public func bindUDP(
        port: Int, initializer: @escaping (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        eventLoop.preconditionInEventLoop()
        let target = listenAddress(forDevicePort: port)
        let boundInitializer = NIOLoopBound(initializer, eventLoop: eventLoop)
        return DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try boundInitializer.value(channel) }
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

    private func reportListenPort(_ devicePort: Int, _ address: SocketAddress, udp: Bool = false) {
        guard reportedListenPorts.insert(udp ? -devicePort : devicePort).inserted else { return }
        let host = address.ipAddress ?? "?"
        diagnostics("listening \(udp ? "UDP " : "")port \(devicePort) is \(host):\(address.port ?? 0)")
    }
}
