import NIOCore
import NIOSSL
import NIOTLS

/// The last handler of a client connection's pipeline: reports readiness (TCP active, or
/// TLS handshake done), decoded packets, errors and the close to its `MQTTClient`.
final class MQTTChannelHandler: ChannelInboundHandler {
    typealias InboundIn = MQTTInbound

    private let client: MQTTClient
    private let connection: MQTTClient.Connection
    private let usesTLS: Bool

    init(client: MQTTClient, connection: MQTTClient.Connection, usesTLS: Bool) {
        self.client = client
        self.connection = connection
        self.usesTLS = usesTLS
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
        client.received(connection, unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        client.errorCaught(connection, error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        client.channelInactive(connection)
        context.fireChannelInactive()
    }
}
