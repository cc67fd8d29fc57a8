import HostNet
import LuaBridge
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension NetSocket {
    // MARK: From the connection

    /// An accepted connection: connected already (the listen callback can send, as on
    /// the device); `connection` follows when the channel's activation reaches the
    /// handler, after the listen callback.
    func adopt(_ handler: NetStreamHandler) {
        attempt += 1
        state = .connected
        stream = handler
        handler.socket = self
        handler.attempt = attempt
    }

    func streamBecameActive(_ handler: NetStreamHandler) {
        let adopted = state == .connected && handler === stream
        guard handler.attempt == attempt, state == .connecting || adopted else {
            handler.abort()
            return
        }
        state = .connected
        stream = handler
        module.trace("\(isTLS ? "tls" : "net"): connected \(handler.channel?.remoteAddress?.description ?? "?")")
        events.append(.connected)
        events.drainIfPossible()
    }

    func streamReceived(_ buffer: ByteBuffer, from handler: NetStreamHandler) {
        guard handler === stream else { return }
        // One callback per lwIP segment at most (spec §4.2: never coalesced).
        var buffer = buffer
        while buffer.readableBytes > 0, let piece = buffer.readSlice(length: min(buffer.readableBytes, Self.segmentSize)) {
            events.append(.received(piece))
        }
        events.drainIfPossible()
    }

    func streamSendsCompleted(_ sizes: [Int], from handler: NetStreamHandler) {
        guard handler === stream else { return }
        for size in sizes {
            outstanding = max(0, outstanding - size)
            events.append(.sent)
        }
        events.drainIfPossible()
    }

    func streamEnded(_ handler: NetStreamHandler, error: (any Error)?) {
        guard handler === stream, state != .idle else { return }
        if isTLS, let error, !(error is IOError) {
            // E.g. TLS 1.3: the server rejects the client certificate after the handshake.
            runtime.diagnostic("tls: secure connection failed: \(HostConnectError.describe(error))")
        }
        ended(code: Self.code(for: error), reason: Self.tlsReason(for: error), attempt: attempt)
        events.drainIfPossible()
    }

    /// The connection (or the attempt) is over: the socket is idle from now on, so
    /// `connect` works inside the callback; the self reference goes after it has run.
    func ended(code: Int, reason: String?, attempt current: Int) {
        guard current == attempt else { return }
        attempt += 1
        state = .idle
        stream = nil
        outstanding = 0
        readingHeld = false
        module.trace("\(isTLS ? "tls" : "net"): connection ended (\(code)\(reason.map { ", " + $0 } ?? ""))")
        events.append(.ended(code: code, reason: reason))
    }

    /// lwIP's code for a connection that ended: remote FIN 0, reset -9, anything else
    /// (keepalive timeout, TLS failure) aborted -8.
    static func code(for error: (any Error)?) -> Int {
        guard let error else { return 0 }
        if let error = error as? IOError, error.errnoCode == ECONNRESET || error.errnoCode == EPIPE { return -9 }
        return -8
    }

    static func tlsReason(for error: (any Error)?) -> String? {
        guard let error else { return nil }
        if let error = error as? IOError {
            switch error.errnoCode {
            case ECONNRESET, EPIPE: return "Connection reset"
            case ETIMEDOUT: return "Timeout"
            default: return "Connection aborted"
            }
        }
        return "SSL error"
    }

    // MARK: To Lua

    func deliver(_ happening: Happening) {
        guard runtime.isCurrent(generation) else { return }
        let lua = runtime.lua
        switch happening {
        case .dns(let ip):
            if pushCallback(Event.dns, on: lua) {
                if let ip { lua.push(ip) } else { lua.pushNil() }
                runtime.callback(.network, arguments: 2)
            }
            // An ending that follows still needs the self reference.
            if !isActive && events.isEmpty && !runtime.isFinished { unhold(on: lua) }
        case .connected:
            fire(.connection)
        case .received(let bytes):
            guard pushCallback(Event.receive, on: lua) else { return }
            bytes.withUnsafeReadableBytes { lua.push($0) }
            runtime.callback(.network, arguments: 2)
        case .sent:
            fire(.sent)
        case .ended(let code, let reason):
            // net_err_cb: an error goes to reconnection if set, else to disconnection.
            let useReconnection = code != 0 && callback(Event.reconnection) != nil
            if isTLS {
                if useReconnection, pushCallback(Event.reconnection, on: lua) {
                    if let reason { lua.push(reason) } else { lua.pushNil() }
                    runtime.callback(.network, arguments: 2)
                } else if let ref = callback(Event.disconnection) {
                    // tls clears the socket reference first: the callback gets nil.
                    lua.push(ref)
                    lua.pushNil()
                    runtime.callback(.network, arguments: 1)
                }
            } else if pushCallback(useReconnection ? Event.reconnection : Event.disconnection, on: lua) {
                lua.push(code)
                runtime.callback(.network, arguments: 2)
            }
            if !isActive && !runtime.isFinished { unhold(on: lua) }
        }
    }

    private func fire(_ event: Event) {
        guard pushCallback(event, on: runtime.lua) else { return }
        runtime.callback(.network, arguments: 1)
    }
}

/// The last handler of a TCP (or TLS) connection's pipeline: reads go to its socket,
/// `send` goes out through a `CoalescingWriter` (one flush per tick; each `send()`'s
/// `sent` fires once NIO has written its bytes), and the end of the connection is
/// reported once with the error that caused it.
final class NetStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Weak: the socket's self reference decides its life, not the connection.
    weak var socket: NetSocket?
    /// The socket attempt this connection belongs to.
    var attempt = 0
    let writer: CoalescingWriter
    private var context: ChannelHandlerContext?
    /// The sizes of the `send()`s in the writer's buffer, in order.
    private var pendingSends: [Int] = []
    private var firstError: (any Error)?
    private var finished = false

    init(network: HostNetwork) {
        writer = CoalescingWriter(network: network)
        writer.prepareFlush = { [unowned self] in
            let sizes = pendingSends
            pendingSends = []
            guard !sizes.isEmpty else { return CoalescingWriter.FlushCompletion.none }
            return .written { [weak self] in
                guard let self else { return }
                socket?.streamSendsCompleted(sizes, from: self)
            }
        }
    }

    var channel: (any Channel)? { context?.channel }

    func send(_ bytes: [UInt8]) {
        guard context != nil else { return }
        pendingSends.append(bytes.count)
        writer.enqueue { $0.writeBytes(bytes) }
    }

    /// `close()` from Lua: what is queued still goes out, then FIN; no event follows.
    func closeLocally() {
        finished = true
        writer.flushAndClose()
    }

    /// Teardown without any event (reboot, garbage collection, a stale attempt).
    func abort() {
        finished = true
        context?.close(promise: nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        writer.attach(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        writer.detach()
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if let socket { socket.streamBecameActive(self) } else { abort() }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        writer.readStarted()
        socket?.streamReceived(unwrapInboundIn(data), from: self)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        writer.readCompleted()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Accepted connections allow half-closure: a FIN ends the connection, as in lwIP.
        if let event = event as? ChannelEvent, case .inputClosed = event {
            end(error: nil)
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if firstError == nil { firstError = error }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(error: firstError)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writer.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    private func end(error: (any Error)?) {
        guard !finished else { return }
        finished = true
        socket?.streamEnded(self, error: error)
    }
}
