import NIOCore
import NIOSSL
import NIOTLS

/// The last handler of a client connection's pipeline: decodes the broker's bytes and
/// reports readiness (TCP active, or TLS handshake done), packets, errors and the close
/// to its `MQTTClient`.
///
/// It decodes itself rather than behind a `ByteToMessageHandler`: one pipeline hop and
/// one boxed `NIOAny` less per packet, a measurable part of a round trip (bench/NOTES.md).
final class MQTTChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let client: MQTTClient
    private let connection: MQTTClient.Connection
    private let usesTLS: Bool
    private var decoder: MQTTPacketDecoder
    /// Received bytes not decoded yet (the tail of an incomplete packet).
    private var pendingBytes: ByteBuffer?
    /// A decoding error ends decoding for good (the connection is being closed).
    private var failed = false
    private var decoding = false

    init(client: MQTTClient, connection: MQTTClient.Connection, usesTLS: Bool, maxPacketSize: Int?) {
        self.client = client
        self.connection = connection
        self.usesTLS = usesTLS
        self.decoder = MQTTPacketDecoder(maxPacketSize: maxPacketSize)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        connection.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        connection.context = nil  // the context holds the pipeline, which holds this handler
    }

    func channelActive(context: ChannelHandlerContext) {
        if !usesTLS {
            client.channelReady(connection, channel: context.channel)
        }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if usesTLS, let tlsEvent = event as? TLSUserEvent, case .handshakeCompleted = tlsEvent {
            client.channelReady(connection, channel: context.channel)
        }
        context.fireUserInboundEventTriggered(event)
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
        connection.reading = true
        decoding = true
        defer { decoding = false }
        var buffer = incoming
        while client.isCurrent(connection) {
            let item: MQTTInbound?
            do {
                item = try decoder.next(from: &buffer)
            } catch {
                failed = true
                pendingBytes = nil
                client.errorCaught(connection, error)
                return
            }
            guard let item else { break }
            client.received(connection, item)
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
        connection.reading = false
        client.readCompleted(connection)
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        client.errorCaught(connection, error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // As before: an incomplete packet at the end of the stream is dropped.
        pendingBytes = nil
        connection.reading = false
        client.channelInactive(connection)
        context.fireChannelInactive()
    }
}
