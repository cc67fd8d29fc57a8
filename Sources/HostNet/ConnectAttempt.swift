import Board
import NIOCore
import NIOSSL
import NIOTLS

/// One `HostNetwork.connect` call: completes its promise once, with the first channel
/// that became usable or with the first failure.
final class ConnectAttempt {
    let host: String
    let port: Int
    let usesTLS: Bool
    let promise: EventLoopPromise<any Channel>
    private(set) var isCompleted = false
    /// The channel the attempt succeeded with.
    private(set) var winner: (any Channel)?
    var timeout: ClockTask?
    /// Outstanding on the clock from the start (DNS, TCP, TLS) until decided.
    var operation: NetworkOperation?
    /// The readiness handler of each channel the attempt made, until TCP is decided.
    var readiness: [ObjectIdentifier: (ConnectReadinessHandler, ChannelHandlerContext)] = [:]

    init(host: String, port: Int, usesTLS: Bool, promise: EventLoopPromise<any Channel>) {
        self.host = host
        self.port = port
        self.usesTLS = usesTLS
        self.promise = promise
    }

    func succeed(_ channel: any Channel) {
        guard !isCompleted else { return }
        isCompleted = true
        winner = channel
        timeout?.cancel()
        operation?.isActive = false
        promise.succeed(channel)
    }

    func fail(_ error: HostConnectError) {
        guard !isCompleted else { return }
        isCompleted = true
        timeout?.cancel()
        operation?.isActive = false
        promise.fail(error)
    }
}

/// Sits between the transport (TCP, or TCP + TLS) and the caller's handlers of an
/// outgoing connection: completes the attempt when the connection is usable (TCP up, or
/// the TLS handshake done) and turns what goes wrong before that into a
/// `HostConnectError`. The caller's handlers see `channelActive` only then, and nothing
/// of a connection that never became usable.
final class ConnectReadinessHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let attempt: ConnectAttempt
    private var ready = false
    private var lastError: (any Error)?

    init(attempt: ConnectAttempt) {
        self.attempt = attempt
    }

    /// The handshake timed out: remember why, then close.
    func handshakeTimedOut(context: ChannelHandlerContext) {
        guard !ready else { return }
        if lastError == nil { lastError = HandshakeTimeout() }
        context.close(promise: nil)
    }

    func channelActive(context: ChannelHandlerContext) {
        if !attempt.usesTLS { becomeReady(context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !ready, attempt.usesTLS, let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            becomeReady(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func becomeReady(context: ChannelHandlerContext) {
        guard !attempt.isCompleted else {
            context.close(promise: nil)  // a late channel of an attempt already decided
            return
        }
        ready = true
        attempt.succeed(context.channel)
        context.fireChannelActive()
        // Its work is done: leave the pipeline, so reads no longer pass through it.
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard ready else { return }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard ready else { return }
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard ready else {
            if lastError == nil { lastError = error }
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        guard ready else {
            // Closed before it was usable: the TLS handshake or verification failed.
            let reason = lastError.map { "TLS handshake failed: \(HostConnectError.describe($0))" }
                ?? "connection closed during the TLS handshake"
            attempt.fail(HostConnectError(lastError is HandshakeTimeout ? .timeout : .tls, reason: reason))
            return
        }
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard ready else { return }
        context.fireChannelWritabilityChanged()
    }

    struct HandshakeTimeout: Error, CustomStringConvertible {
        var description: String { "timed out" }
    }
}
