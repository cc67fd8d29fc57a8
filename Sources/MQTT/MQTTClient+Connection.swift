import NIOCore
import NIOPosix
import NIOSSL

extension MQTTClient {
    // MARK: - Connection events (from the handler and futures)

    /// Forgets the current connection: it delivers no more events. With
    /// `flushingPendingOutput`, what it still has to write (a DISCONNECT waiting for this
    /// tick's flush, or one being written) goes out before TCP closes; otherwise TCP is
    /// closed at once (an abandoned attempt, a simulated reboot).
    func detachConnection(flushingPendingOutput: Bool = false) {
        guard let connection else { return }
        self.connection = nil
        connection.closed = true
        if flushingPendingOutput, let channel = connection.channel {
            // Writes complete in order: closing after this one closes after all earlier.
            channel.writeAndFlush(connection.outBuffer).assumeIsolated().whenComplete { _ in
                channel.close(promise: nil)
            }
        } else {
            connection.channel?.close(promise: nil)
        }
        session.connectionClosed()
        events.removeAll()
        cancelTimer()
    }

    func isCurrent(_ connection: Connection) -> Bool {
        self.connection === connection && !connection.closed
    }

    func failBeforeTCP(_ connection: Connection, _ failure: MQTTConnectFailure) {
        guard isCurrent(connection) else { return }
        self.connection = nil
        connection.closed = true
        session.connectionClosed()
        enqueue(.connectFailed(failure))
        drainIfPossible()
    }

    func connectCompleted(_ connection: Connection, _ result: Result<any Channel, any Error>, host: String, port: Int) {
        switch result {
        case .success(let channel):
            if !isCurrent(connection) {
                channel.close(promise: nil)
                return
            }
            connection.channel = channel
            if !connection.ready {
                // TLS: the handshake must finish within the connect timeout too.
                eventLoop.assumeIsolated().scheduleTask(in: configuration.tcpConnectTimeout) {
                    guard self.isCurrent(connection), !connection.ready else { return }
                    if connection.lastError == nil { connection.lastError = HandshakeTimeout() }
                    channel.close(promise: nil)
                }
            }
        case .failure(let error):
            guard isCurrent(connection) else { return }
            if let error = error as? NIOConnectionError, error.connectionErrors.isEmpty {
                let cause = error.dnsAError ?? error.dnsAAAAError
                failBeforeTCP(connection, MQTTConnectFailure(
                    code: MQTTConnectFailure.dnsFailure,
                    reason: "DNS lookup of \(host) failed" + (cause.map { ": \($0)" } ?? "")))
            } else {
                failBeforeTCP(connection, MQTTConnectFailure(
                    code: MQTTConnectFailure.serverNotFound,
                    reason: "TCP connect to \(host):\(port) failed: \(Self.describe(error))"))
            }
        }
    }

    func channelReady(_ connection: Connection, channel: any Channel) {
        guard isCurrent(connection) else {
            channel.close(promise: nil)
            return
        }
        connection.channel = channel
        connection.ready = true
        remoteAddress = channel.remoteAddress
        enqueue(.tcpConnected)
        perform(session.connectionEstablished(connectPacket, now: .now()))
    }

    var connectPacket: ConnectPacket { connectOptions.connectPacket }

    func received(_ connection: Connection, _ inbound: MQTTInbound) {
        guard isCurrent(connection), connection.ready else { return }
        if let trace { trace("mqtt < " + inbound.traceDescription) }
        perform(session.received(inbound, now: .now()))
    }

    func errorCaught(_ connection: Connection, _ error: any Error) {
        guard isCurrent(connection) else { return }
        if let protocolError = error as? MQTTProtocolError, connection.ready {
            if let trace { trace("mqtt < protocol error: \(protocolError.description)") }
            perform(session.protocolError(protocolError))
            return
        }
        if connection.lastError == nil { connection.lastError = error }
        connection.channel?.close(promise: nil)
    }

    func channelInactive(_ connection: Connection) {
        guard isCurrent(connection) else { return }
        self.connection = nil
        connection.closed = true
        cancelTimer()
        if !connection.ready {
            // Closed before TCP/TLS was up (TLS handshake or verification failure).
            session.connectionClosed()
            let reason = connection.lastError.map { "TLS handshake failed: \(Self.describe($0))" }
                ?? "connection closed during the TLS handshake"
            enqueue(.connectFailed(MQTTConnectFailure(code: MQTTConnectFailure.serverNotFound, reason: reason)))
            drainIfPossible()
            return
        }
        let cause = connection.closeCause
            ?? connection.lastError.map { MQTTCloseCause.ioError(Self.describe($0)) }
            ?? .remoteClosed
        session.connectionClosed()
        enqueue(.closed(cause))
        drainIfPossible()
    }

    // MARK: - Helpers

    struct HandshakeTimeout: Error, CustomStringConvertible {
        var description: String { "timed out" }
    }

    static func makeSSLContext(_ options: MQTTTLSOptions) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch options.verification {
        case .systemTrustStore:
            break
        case .certificates(let pem):
            configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(pem))
        case .none:
            configuration.certificateVerification = .none
        }
        return try NIOSSLContext(configuration: configuration)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        if let error = error as? NIOSSLError, case .handshakeFailed(let inner) = error {
            // "…:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at …" → "certificate verify failed"
            let text = String(describing: inner)
            if let range = text.firstRange(of: "OPENSSL_internal:") {
                let reason = text[range.upperBound...].prefix { $0 != " " && $0 != "]" }
                return String(reason.lowercased().map { $0 == "_" ? " " : $0 })
            }
            return text
        }
        if let error = error as? NIOConnectionError {
            return error.connectionErrors.map { "\($0.target): \(describe($0.error))" }.joined(separator: "; ")
        }
        return String(describing: error)
    }
}
