import NIOCore

/// A listening TCP socket made by `HostNetwork.listen`: the device's port and where it
/// really listens. Thread-safe.
public final class HostListener: Sendable {
    /// The port the device script asked for.
    public let devicePort: Int
    /// Where the host listens (after the privileged-port and `--remap` mapping).
    public let localAddress: SocketAddress
    /// The server channel (closing it stops accepting; accepted channels stay open).
    public let channel: any Channel

    init(devicePort: Int, localAddress: SocketAddress, channel: any Channel) {
        self.devicePort = devicePort
        self.localAddress = localAddress
        self.channel = channel
    }

    /// The host port connections must go to.
    public var port: Int { localAddress.port ?? 0 }

    /// Stops listening.
    public func close() {
        channel.close(promise: nil)
    }
}

/// Hands each accepted channel to the listener's owner when it becomes active (accept
/// order: one loop accepts and activates its children in order), before the owner's own
/// handlers see `channelActive`.
final class AcceptNotifier: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let accepted: (any Channel) -> Void

    init(accepted: @escaping (any Channel) -> Void) {
        self.accepted = accepted
    }

    func channelActive(context: ChannelHandlerContext) {
        accepted(context.channel)
        context.fireChannelActive()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
