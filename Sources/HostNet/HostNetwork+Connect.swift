import Board
import NIOCore
import NIOPosix
import NIOSSL

extension HostNetwork {
    /// Connects to `host:port` (after remapping): DNS, TCP and, with `tls`, the TLS
    /// handshake, all within `timeout` of device time each (the TCP connect, then the
    /// handshake).
    ///
    /// `channelInitializer` adds the caller's handlers to each channel the attempt makes
    /// (more than one when a name has several addresses; only one completes). They see
    /// `channelActive` once the connection is usable, and nothing of one that never was.
    /// An IP literal starts the TCP connect inside this call; a name is resolved
    /// asynchronously.
    ///
    /// - Returns: the usable channel, or a failed future with a `HostConnectError`
    ///   (possibly already failed, so the caller must not deliver callbacks from it
    ///   synchronously: see `DeferredEvents`).
    public func connect(
        host: String, port: Int, tls: TLSSettings? = nil, timeout: TimeAmount,
        channelInitializer: @escaping (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        eventLoop.preconditionInEventLoop()
        var (targetHost, targetPort) = remap.apply(host: host, port: port)
        if targetHost.hasPrefix("["), targetHost.hasSuffix("]") {
            targetHost = String(targetHost.dropFirst().dropLast())
        }
        let attempt = ConnectAttempt(
            host: targetHost, port: targetPort, usesTLS: tls != nil, promise: eventLoop.makePromise())
        // Virtual time waits for the connect (DeviceClock, rule 3).
        attempt.operation = clock.makeNetworkOperation()
        attempt.operation?.isActive = true
        let ipAddress = try? SocketAddress(ipAddress: targetHost, port: targetPort)
        let faultEndpoint = FaultInjector.Endpoint(
            host: host, port: port, targetHost: targetHost, targetPort: targetPort, accepted: false)
        if let failure = faults?.connectFailure(faultEndpoint, isName: ipAddress == nil || Self.isName(host)) {
            attempt.fail(failure)
            return attempt.promise.futureResult
        }
        let boundFaults = faults.map { NIOLoopBound($0, eventLoop: eventLoop) }

        var sslContext: NIOSSLContext?
        var serverName: String?
        if let tls {
            do {
                sslContext = try tls.makeSSLContext()
            } catch {
                attempt.fail(HostConnectError(.tls, reason: "TLS setup failed: \(error)"))
                return attempt.promise.futureResult
            }
            serverName = tls.serverName ?? (ipAddress == nil ? targetHost : nil)
        }

        let capture = self.capture
        let boundAttempt = NIOLoopBound(attempt, eventLoop: eventLoop)
        let boundInitializer = NIOLoopBound(channelInitializer, eventLoop: eventLoop)
        let bootstrap = ClientBootstrap(group: eventLoop)
            // The clock's timer below decides; this is only a backstop in real time.
            .connectTimeout(timeout + .seconds(1))
            .channelOption(.allowRemoteHalfClosure, value: false)
            .channelOption(.recvAllocator, value: Self.receiveAllocator)
            .channelInitializer { [sslContext, serverName] channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let sslContext {
                        try sync.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                    }
                    // After TLS: the capture shows the plaintext (see `PacketCapture`).
                    if let capture { try sync.addHandler(capture.makeHandler(mode: .client)) }
                    if let boundFaults { try sync.addHandler(boundFaults.value.makeHandler(faultEndpoint)) }
                    let attempt = boundAttempt.value
                    let handler = ConnectReadinessHandler(attempt: attempt)
                    try sync.addHandler(handler)
                    // Each channel has its own; the handshake timeout needs the winner's.
                    attempt.readiness[ObjectIdentifier(channel)] = (handler, try sync.context(handler: handler))
                    try boundInitializer.value(channel)
                }
            }
        attempt.timeout = clock.schedule(in: timeout) {
            attempt.fail(HostConnectError(.timeout, reason: "TCP connect to \(targetHost):\(targetPort) failed: timed out"))
        }
        let future = ipAddress.map { bootstrap.connect(to: $0) } ?? bootstrap.connect(host: targetHost, port: targetPort)
        future.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                let entry = attempt.readiness.removeValue(forKey: ObjectIdentifier(channel))
                attempt.readiness.removeAll()
                if attempt.isCompleted {
                    if attempt.winner !== channel { channel.close(promise: nil) }
                    return
                }
                // TLS: the handshake must finish within the timeout too.
                attempt.timeout?.cancel()
                attempt.timeout = self.clock.schedule(in: timeout) {
                    if let (handler, context) = entry { handler.handshakeTimedOut(context: context) }
                }
            case .failure(let error):
                attempt.readiness.removeAll()
                attempt.fail(Self.classify(error, host: targetHost, port: targetPort))
            }
        }
        return attempt.promise.futureResult
    }

    /// Whether `host` is a name (not an IP literal).
    static func isName(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return (try? SocketAddress(ipAddress: bare, port: 0)) == nil
    }

    /// Sorts a bootstrap's connect error into the connector's vocabulary.
    static func classify(_ error: any Error, host: String, port: Int) -> HostConnectError {
        if let error = error as? NIOConnectionError, error.connectionErrors.isEmpty {
            let cause = error.dnsAError ?? error.dnsAAAAError
            return HostConnectError(
                .dnsFailure, reason: "DNS lookup of \(host) failed" + (cause.map { ": \($0)" } ?? ""))
        }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return HostConnectError(.timeout, reason: "TCP connect to \(host):\(port) failed: timed out")
        }
        return HostConnectError(
            .refused, reason: "TCP connect to \(host):\(port) failed: \(HostConnectError.describe(error))")
    }

    /// A UDP socket connected to `host:port` (after remapping), bound to a free local port.
    /// Names are resolved with the system resolver. With `--pcap`, its datagrams are
    /// captured (`UDPCaptureHandler`; writes may be `ByteBuffer` or envelopes).
    public func connectUDP(
        host: String, port: Int, initializer: @escaping (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        eventLoop.preconditionInEventLoop()
        var (targetHost, targetPort) = remap.apply(host: host, port: port)
        if targetHost.hasPrefix("["), targetHost.hasSuffix("]") {
            targetHost = String(targetHost.dropFirst().dropLast())
        }
        let boundInitializer = NIOLoopBound(initializer, eventLoop: eventLoop)
        let (udpHost, udpPort) = (targetHost, targetPort)
        let operation = NIOLoopBound(clock.makeNetworkOperation(), eventLoop: eventLoop)
        operation.value.isActive = true
        let capture = self.capture
        return DatagramBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try Self.addDatagramCapture(capture, to: channel)
                    try boundInitializer.value(channel)
                }
            }
            .connect(host: udpHost, port: udpPort)
            .flatMapErrorThrowing { error in
                throw Self.classify(error, host: udpHost, port: udpPort)
            }
            .always { _ in operation.value.isActive = false }
    }
}
