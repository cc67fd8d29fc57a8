import HostNet
import MQTTCore
import NIOCore

extension MQTTClient {
    // MARK: - Connection events (from the connector and the handler)

    /// Forgets the current connection or attempt: it delivers no more events. With
    /// `flushingPendingOutput`, what it still has to write (a DISCONNECT waiting for this
    /// tick's flush, or one being written) goes out before TCP closes; otherwise TCP is
    /// closed at once (an abandoned attempt, a simulated reboot).
    func detachConnection(flushingPendingOutput: Bool = false) {
        attempt = nil
        if let handler {
            self.handler = nil
            handler.detachFromClient(flushingPendingOutput: flushingPendingOutput)
        }
        session.connectionClosed()
        connectionGeneration &+= 1
        updateBudgetShare()
        events.removeAll()
        cancelTimer()
        updateNetworkOperation()
    }

    /// Whether `handler` is the current connection's and it has not been given up.
    func isCurrent(_ handler: MQTTChannelHandler) -> Bool {
        self.handler === handler && !handler.isDetached
    }

    func connectCompleted(_ token: ConnectToken, _ result: Result<any Channel, any Error>) {
        guard attempt === token else {
            if case .success(let channel) = result { channel.close(promise: nil) }
            return
        }
        attempt = nil
        switch result {
        case .success(let channel):
            guard let handler = try? channel.pipeline.syncOperations.handler(type: MQTTChannelHandler.self) else {
                channel.close(promise: nil)
                return
            }
            self.handler = handler
            connectionGeneration &+= 1
            remoteAddress = channel.remoteAddress
            events.append(.tcpConnected)
            perform(session.connectionEstablished(connectPacket, now: network.clock.now))
        case .failure(let error):
            let failure: MQTTConnectFailure
            if let error = error as? HostConnectError {
                failure = MQTTConnectFailure(
                    code: error.kind == .dnsFailure ? MQTTConnectFailure.dnsFailure : MQTTConnectFailure.serverNotFound,
                    reason: error.reason)
            } else {
                failure = MQTTConnectFailure(code: MQTTConnectFailure.serverNotFound, reason: "\(error)")
            }
            session.connectionClosed()
            events.append(.connectFailed(failure))
            events.drainIfPossible()
        }
    }

    var connectPacket: ConnectPacket { connectOptions.connectPacket }

    func received(_ handler: MQTTChannelHandler, _ inbound: MQTTInbound) {
        guard isCurrent(handler) else { return }
        if let trace { trace("mqtt < " + inbound.traceDescription) }
        perform(session.received(inbound, now: network.clock.now))
    }

    /// A decoding error: the session decides (it closes with a protocol error).
    func protocolError(_ handler: MQTTChannelHandler, _ error: MQTTProtocolError) {
        guard isCurrent(handler) else { return }
        if let trace { trace("mqtt < protocol error: \(error.description)") }
        perform(session.protocolError(error))
    }

    /// The handler's read completed (after it flushed what the read caused).
    func readCompleted(_ handler: MQTTChannelHandler) {
        network.readBusyPoll?.readCompleted(
            awaitingReply: session.outstandingCount > 0 || session.pendingCount > 0)
    }

    /// The handler flushed a batch of packets: `written` when NIO wrote them (a batch that
    /// awaits completion) or right after the hand-off.
    func written(_ handler: MQTTChannelHandler, _ batch: MQTTSession.WriteBatch) {
        guard isCurrent(handler) else { return }
        perform(session.written(batch, now: network.clock.now))
    }

    func channelInactive(_ handler: MQTTChannelHandler, cause: MQTTCloseCause) {
        guard isCurrent(handler) else { return }
        self.handler = nil
        cancelTimer()
        session.connectionClosed()
        connectionGeneration &+= 1
        updateBudgetShare()
        updateNetworkOperation()
        events.append(.closed(cause))
        events.drainIfPossible()
    }
}
