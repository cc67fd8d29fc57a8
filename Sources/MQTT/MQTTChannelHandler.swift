import HostNet
import MQTTCore
import NIOCore

/// The last handler of a client connection's pipeline, and the connection's state: decodes
/// the broker's bytes, owns the output (a `CoalescingWriter` and the session's write batch)
/// and reports packets, flushes and the close to its `MQTTClient`.
///
/// It sees the channel only once it is usable (HostNet's connector holds back everything
/// before TCP, or the TLS handshake, is done).
///
/// It decodes itself rather than behind a `ByteToMessageHandler`: one pipeline hop and
/// one boxed `NIOAny` less per packet, a measurable part of a round trip (bench/NOTES.md).
final class MQTTChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// Strong: an open connection keeps its client alive until it closes.
    private let client: MQTTClient
    /// Coalesced output: one flush per loop tick, held back while the socket is full.
    let writer: CoalescingWriter
    /// What the bytes in `writer` mean to the session (reported once written).
    @exclusivity(unchecked) private var batch = MQTTSession.WriteBatch()
    @exclusivity(unchecked) private var decoder: MQTTPacketDecoder
    /// Received bytes not decoded yet (the tail of an incomplete packet).
    @exclusivity(unchecked) private var pendingBytes: ByteBuffer?
    /// A decoding error ends decoding for good (the connection is being closed).
    @exclusivity(unchecked) private var failed = false
    @exclusivity(unchecked) private var decoding = false
    @exclusivity(unchecked) private var context: ChannelHandlerContext?
    /// Why the client asked to close (first cause wins).
    @exclusivity(unchecked) private var closeCause: MQTTCloseCause?
    /// The first I/O error (the close cause when nothing else is known).
    @exclusivity(unchecked) private var lastError: (any Error)?
    /// The client has given this connection up: no more events go to it.
    @exclusivity(unchecked) private(set) var isDetached = false

    init(client: MQTTClient, network: HostNetwork, maxPacketSize: Int?) {
        self.client = client
        self.writer = CoalescingWriter(network: network)
        self.decoder = MQTTPacketDecoder(maxPacketSize: maxPacketSize)
        writer.prepareFlush = { [unowned self] in prepareFlush() }
    }

    /// The connection's channel while the handler is in its pipeline.
    var channel: (any Channel)? { context?.channel }

    // MARK: Output (from the client)

    /// Queues `packet` for this tick's flush.
    func send(_ packet: MQTTPacket, _ token: MQTTSession.WriteToken) {
        guard context != nil else { return }
        batch.append(token)
        writer.enqueue { packet.write(to: &$0) }
    }

    private func prepareFlush() -> CoalescingWriter.FlushCompletion? {
        guard client.isCurrent(self), !batch.isEmpty else { return nil }
        let flushed = batch
        batch = MQTTSession.WriteBatch()
        if flushed.awaitsCompletion {
            return .written { [unowned self] in client.written(self, flushed) }
        }
        // Nothing waits for these bytes to leave (acks, QoS>0 publishes: their completion
        // is the broker's reply): no promise, and the keepalive restarts now.
        return .handedOff { [unowned self] in client.written(self, flushed) }
    }

    /// Closes TCP; `.closed(cause)` follows when it has closed.
    func close(cause: MQTTCloseCause) {
        guard closeCause == nil else { return }
        closeCause = cause
        context?.close(promise: nil)
    }

    /// The client forgets this connection. With `flushingPendingOutput` what is queued
    /// (a DISCONNECT) is written before TCP closes; otherwise TCP closes at once.
    func detachFromClient(flushingPendingOutput: Bool) {
        isDetached = true
        if flushingPendingOutput {
            writer.flushAndClose()
        } else {
            context?.close(promise: nil)
        }
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        writer.attach(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // The context holds the pipeline, which holds this handler.
        self.context = nil
        writer.detach()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        var incoming = unwrapInboundIn(data)
        if var pending = pendingBytes {
            pendingBytes = nil
            pending.writeBuffer(&incoming)
            incoming = pending
        }
        // A callback that runs inside `received` cannot make this handler read again
        // synchronously, but be safe: bytes that arrive meanwhile wait in `pendingBytes`.
        guard !decoding else {
            pendingBytes = incoming
            return
        }
        writer.readStarted()
        decoding = true
        defer { decoding = false }
        var buffer = incoming
        while client.isCurrent(self) {
            let item: MQTTInbound?
            do {
                item = try decoder.next(from: &buffer)
            } catch {
                failed = true
                pendingBytes = nil
                if let protocolError = error as? MQTTProtocolError {
                    client.protocolError(self, protocolError)
                } else {
                    ioError(error)
                }
                return
            }
            guard let item else { break }
            client.received(self, item)
            if var arrived = pendingBytes {
                pendingBytes = nil
                buffer.writeBuffer(&arrived)
            }
        }
        if buffer.readableBytes > 0 {
            // Keep only the unread tail, so the receive buffer can be reused.
            pendingBytes = buffer.readerIndex > 0 ? context.channel.allocator.buffer(buffer: buffer) : buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        writer.readCompleted()
        if client.isCurrent(self) { client.readCompleted(self) }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        writer.writabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ioError(error)
    }

    private func ioError(_ error: any Error) {
        if lastError == nil { lastError = error }
        context?.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // As before: an incomplete packet at the end of the stream is dropped.
        pendingBytes = nil
        let cause = closeCause
            ?? lastError.map { MQTTCloseCause.ioError(HostConnectError.describe($0)) }
            ?? .remoteClosed
        client.channelInactive(self, cause: cause)
        context.fireChannelInactive()
    }
}
