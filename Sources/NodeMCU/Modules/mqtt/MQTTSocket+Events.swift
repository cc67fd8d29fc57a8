import LuaBridge
import MQTT
import NIOCore

extension MQTTSocket {
    /// Turns core events into the firmware's callbacks (spec §2.5, §2.8).
    func handle(_ event: MQTTClientEvent) {
        guard !runtime.halted else { return }
        report(event)
        let lua = runtime.lua
        switch event {
        case .tcpConnected:
            link = .connected

        case .connected:
            if profile == .v2_2 {
                // 2.2 clears the connfail slot at a good CONNACK: once per connect().
                clearCallback(Event.connfail, on: lua)
                if autoreconnectRequested { autoreconnectActive = true }
            }
            fire(.connect)

        case .connectFailed(let failure):
            if let reason = failure.reason, failure.code == MQTTConnectFailure.serverNotFound,
               lastEndpoint?.tls != nil {
                runtime.diagnostic("mqtt: secure connection failed: \(reason)")
            }
            let tcpWasUp = failure.code != MQTTConnectFailure.serverNotFound && failure.code != MQTTConnectFailure.dnsFailure
            if autoreconnectActive {
                // A failed reconnect attempt: silent, retried (paced at one a second).
                if !tcpWasUp {
                    link = .idle
                    scheduleReconnect(after: .seconds(1))
                }
                return
            }
            withSelfOnStack { selfIndex in
                if !tcpWasUp {
                    // Nothing follows a DNS or TCP failure: the client is torn down first,
                    // so connect() inside the callback starts afresh.
                    link = .idle
                    unhold(on: lua)
                }
                runningConnfailReason = failure.code
                invoke(.connfail, selfIndex) { lua.push(failure.code); return 1 }
                runningConnfailReason = nil
            }

        case .message(let message):
            deliver(message, to: .message)
        case .oversizedMessage(let message, _):
            // The 3.0 overflow callback: the payload is the part within max_message_length.
            deliver(message, to: .overflow)

        case .published:
            fire(.puback)
        case .subscribed:
            fire(.suback)
        case .unsubscribed:
            fire(.unsuback)

        case .closed(let cause):
            closed(cause: cause)
        }
    }

    /// Tells the runtime's observers (`RuntimeEvent`) what happened.
    private func report(_ event: MQTTClientEvent) {
        let id = ObjectIdentifier(self)
        switch event {
        case .connected: runtime.emit(.mqttConnected(client: id))
        case .connectFailed(let failure): runtime.emit(.mqttConnectFailed(client: id, code: failure.code))
        case .closed: runtime.emit(.mqttOffline(client: id))
        case .message(let message), .oversizedMessage(let message, _):
            runtime.emit(.mqttReceived(
                client: id, topic: Array(message.topic.readableBytesView), payloadBytes: message.payload.readableBytes))
        default: break
        }
    }

    /// `fn(client, topic[, data])`: data is absent for an empty payload; a message with
    /// an empty topic is dropped (spec §2.5).
    func deliver(_ message: MQTTMessage, to slot: Event) {
        let lua = runtime.lua
        guard message.topic.readableBytes > 0, pushCallback(slot, on: lua) else { return }
        pushBytes(message.topic, on: lua)
        guard message.payload.readableBytes > 0 else {
            runtime.callback(.network, arguments: 2)
            return
        }
        pushBytes(message.payload, on: lua)
        runtime.callback(.network, arguments: 3)
    }

    func pushBytes(_ buffer: ByteBuffer, on lua: LuaState) {
        buffer.withUnsafeReadableBytes { lua.push($0) }
    }

    /// Calls the slot's callback with the client as its only argument.
    func fire(_ slot: Event) {
        guard pushCallback(slot, on: runtime.lua) else { return }
        runtime.callback(.network, arguments: 1)
    }

    /// Runs `body` with the client's userdata on the stack (at the index passed),
    /// so callbacks can still receive it after the client stopped being held.
    func withSelfOnStack(_ body: (Int32) -> Void) {
        let lua = runtime.lua
        guard let selfRef = selfRef else { return }
        lua.push(selfRef)
        let index = lua.top
        body(index)
        if !runtime.isFinished { lua.remove(at: index) }
    }

    /// Calls the slot's callback with the client at `selfIndex` and the arguments
    /// `pushArguments` pushes (it returns their count).
    func invoke(_ slot: Event, _ selfIndex: Int32,
                        _ pushArguments: () -> Int32 = { 0 }) {
        let lua = runtime.lua
        guard !runtime.halted, let callback = callback(slot) else { return }
        lua.push(callback)
        lua.pushValue(at: selfIndex)
        let count = pushArguments()
        runtime.callback(.network, arguments: 1 + count)
    }

    /// A connection that had been established is over (spec §2.8).
    func closed(cause: MQTTCloseCause) {
        let lua = runtime.lua
        // 2.2: close() on a connected client never fires offline, also when the connection
        // was already ending for another reason (close() inside connfail).
        let wasLocal2_2Close = profile == .v2_2 && (cause == .localClose || link == .closing)
        let reconnect = autoreconnectActive && !wasLocal2_2Close
        let silent = reconnect && cause != .remoteClosed
        link = .idle
        withSelfOnStack { selfIndex in
            // Teardown happens before the callbacks run: the client is no longer held
            // (unless it reconnects by itself) and connect() works inside them.
            if reconnect {
                scheduleReconnect(after: silent ? .seconds(1) : .zero)
            } else {
                unhold(on: lua)
            }
            // 3.0 reports an aborted session as connfail(-5) first.
            if profile == .v3_0, case .ioError = cause {
                invoke(.connfail, selfIndex) { lua.push(MQTTConnectFailure.serverNotFound); return 1 }
            }
            if !wasLocal2_2Close && !silent {
                invoke(.offline, selfIndex)
            }
        }
    }

}
