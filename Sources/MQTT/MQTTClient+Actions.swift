import NIOCore

extension MQTTClient {
    // MARK: - Performing actions

    func perform(_ actions: [MQTTSession.Action]) {
        var closeCause: MQTTCloseCause?
        for action in actions {
            switch action {
            case .send(let packet, let token):
                send(packet, token)
            case .deliver(let event):
                enqueue(event)
            case .closeConnection(let cause):
                closeCause = cause
            }
        }
        if let closeCause, let connection, connection.closeCause == nil {
            connection.closeCause = closeCause
            connection.channel?.close(promise: nil)
        }
        rescheduleTimer()
        drainIfPossible()
    }

    func send(_ packet: MQTTPacket, _ token: MQTTSession.WriteToken) {
        guard let connection, connection.channel != nil else { return }
        if let trace { trace("mqtt > " + packet.traceDescription) }
        packet.write(to: &connection.outBuffer)
        connection.outBatch.append(token)
        // Writes are coalesced per loop tick, but a burst (thousands of publishes from one
        // chunk) goes to the socket as it grows: the broker starts receiving while the
        // script still publishes, and no single buffer holds the whole burst.
        if connection.outBuffer.readableBytes >= Self.eagerFlushBytes {
            flush(connection)
            return
        }
        if connection.reading {
            // Replies to what is being read go out when the read completes.
            connection.flushAfterRead = true
            return
        }
        guard !connection.flushScheduled else { return }
        connection.flushScheduled = true
        flushScheduler.schedule { self.flush(connection) }
    }

    /// The channel finished a read: flush what the packets it delivered caused.
    func readCompleted(_ connection: Connection) {
        if connection.flushAfterRead {
            connection.flushAfterRead = false
            flush(connection)
        }
        readBusyPoll?.readCompleted(awaitingReply: session.outstandingCount > 0 || session.pendingCount > 0)
    }

    /// Outgoing bytes after which `send` flushes without waiting for the end of the tick.
    static var eagerFlushBytes: Int { 64 * 1024 }

    func flush(_ connection: Connection) {
        connection.flushScheduled = false
        guard isCurrent(connection), connection.channel != nil, let context = connection.context,
              !connection.outBatch.isEmpty
        else { return }
        readBusyPoll?.wrote()
        var buffer = connection.outBuffer
        let batch = connection.outBatch
        // The buffer written last time is normally free again (NIO wrote it at once):
        // reuse its storage rather than allocate one per flush.
        connection.outBuffer = connection.spareBuffer ?? ByteBufferAllocator().buffer(capacity: min(buffer.readableBytes, 65_536))
        connection.spareBuffer = nil
        connection.outBatch = MQTTSession.WriteBatch()
        if batch.awaitsCompletion {
            context.writeAndFlush(NIOAny(buffer)).assumeIsolated().whenComplete { result in
                guard case .success = result, self.isCurrent(connection) else { return }
                let actions = self.session.written(batch, now: .now())
                // Flushes the callbacks request now continue a chain (FlushScheduler).
                self.flushScheduler.completingWrite { self.perform(actions) }
            }
        } else {
            // Nothing waits for these bytes to leave (acks, QoS>0 publishes: their
            // completion is the broker's reply): no promise, and the keepalive restarts now.
            context.writeAndFlush(NIOAny(buffer), promise: nil)
            perform(session.written(batch, now: .now()))
        }
        // Still shared if NIO has not written it yet: then `clear()` allocates anew.
        if buffer.capacity <= 65_536 {
            buffer.clear()
            connection.spareBuffer = buffer
        }
    }

    // MARK: - Timer

    func rescheduleTimer() {
        guard connection != nil, let deadline = session.nextDeadline else {
            cancelTimer()
            return
        }
        if let scheduled = timerDeadline, scheduled <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.timer = nil
            self.timerDeadline = nil
            self.perform(self.session.tick(now: .now()))
        }
    }

    func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }

    // MARK: - Events

    func enqueue(_ event: MQTTClientEvent) {
        events.append(event)
    }

    func drainIfPossible() {
        guard !draining, !events.isEmpty else { return }
        if apiDepth > 0 {
            guard !drainScheduled else { return }
            drainScheduled = true
            eventLoop.assumeIsolated().execute {
                self.drainScheduled = false
                self.drainIfPossible()
            }
            return
        }
        draining = true
        defer { draining = false }
        while let event = events.popFirst() {
            eventHandler?(event)
        }
    }
}
