import MQTTCore
import NIOCore

extension MQTTClient {
    // MARK: - Performing actions

    func perform(_ actions: [MQTTSession.Action]) {
        var closeCause: MQTTCloseCause?
        for action in actions {
            switch action {
            case .send(let packet, let token):
                if let handler {
                    if let trace { trace("mqtt > " + packet.traceDescription) }
                    handler.send(packet, token)
                }
            case .deliver(let event):
                if case .connectFailed(let failure) = event, failure.code == MQTTConnectFailure.notAConnAck {
                    protocolViolation?(failure.reason ?? "first packet from the broker was not a CONNACK")
                }
                events.append(event)
            case .closeConnection(let cause):
                if case .protocolError(let text) = cause { protocolViolation?(text) }
                closeCause = cause
            }
        }
        if let closeCause { handler?.close(cause: closeCause) }
        updateBudgetShare()
        rescheduleTimer()
        updateNetworkOperation()
        events.drainIfPossible()
    }

    /// Reports to the clock whether this client waits for the network (see
    /// `MQTTSession.awaitsNetwork`; the connect itself is HostNet's operation).
    func updateNetworkOperation() {
        networkOperation.isActive = handler != nil && session.awaitsNetwork
    }

    /// Reports the session's queued bytes to the shared queue budget.
    func updateBudgetShare() {
        let now = session.pendingBytes
        guard now != budgetShare else { return }
        queueBudget?.change(by: now - budgetShare)
        budgetShare = now
    }

    // MARK: - Timer

    func rescheduleTimer() {
        guard handler != nil, let deadline = session.nextDeadline else {
            cancelTimer()
            return
        }
        if let scheduled = timerDeadline, scheduled <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = network.clock.schedule(at: deadline) {
            self.timer = nil
            self.timerDeadline = nil
            self.perform(self.session.tick(now: self.network.clock.now))
        }
    }

    func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }
}
