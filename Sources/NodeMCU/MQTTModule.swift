import LuaBridge
import MQTT
import NIOCore

/// Lua: the `mqtt` module (behaviour spec §2), profiles 2.2 and 3.0.
public final class MQTTModule {
    unowned let runtime: Runtime
    let clientType: LuaObjectType<LuaMQTTClient>
    var profile: FirmwareProfile { runtime.profile }

    /// "(firmware 2.2)" at the end of quirk warnings.
    private var firmwareSuffix: String { " (firmware \(profile.rawValue))" }

    /// The outgoing packet buffer of the firmware, with 3 bytes reserved for the
    /// fixed header: a larger publish returns false (spec §2.10).
    var packetLimit: Int { profile == .v2_2 ? 1024 : 1460 }

    init(runtime: Runtime) {
        self.runtime = runtime
        let lua = runtime.lua
        unowned var module: MQTTModule!
        func method(_ body: @escaping (MQTTModule, LuaState, LuaMQTTClient) throws(LuaError) -> Int32) -> LuaFunction.Body {
            { lua throws(LuaError) in try body(module, lua, try module.clientType.check(1, on: lua)) }
        }
        clientType = LuaObjectType(name: "mqtt.socket", in: lua, methods: [
            ("connect", method { m, lua, c throws(LuaError) in try m.connect(lua, c) }),
            ("close", method { m, lua, c throws(LuaError) in m.close(lua, c) }),
            ("publish", method { m, lua, c throws(LuaError) in try m.publish(lua, c) }),
            ("subscribe", method { m, lua, c throws(LuaError) in try m.subscribe(lua, c) }),
            ("unsubscribe", method { m, lua, c throws(LuaError) in try m.unsubscribe(lua, c) }),
            ("lwt", method { m, lua, c throws(LuaError) in try m.lwt(lua, c) }),
            ("on", method { m, lua, c throws(LuaError) in try m.on(lua, c) }),
        ]) { lua, client in
            // An unreferenced idle client: free it and its callbacks.
            client.reconnectTask?.cancel()
            client.core.abort()
            client.releaseCallbacks(on: lua)
            client.module.runtime.release(client)
        }
        module = self

        lua.newTable()
        lua.setFunction("Client") { lua throws(LuaError) in try module.newClient(lua) }
        for (name, value) in [
            ("CONN_FAIL_SERVER_NOT_FOUND", -5), ("CONN_FAIL_NOT_A_CONNACK_MSG", -4), ("CONN_FAIL_DNS", -3),
            ("CONN_FAIL_TIMEOUT_RECEIVING", -2), ("CONN_FAIL_TIMEOUT_SENDING", -1), ("CONNACK_ACCEPTED", 0),
            ("CONNACK_REFUSED_PROTOCOL_VER", 1), ("CONNACK_REFUSED_ID_REJECTED", 2),
            ("CONNACK_REFUSED_SERVER_UNAVAILABLE", 3), ("CONNACK_REFUSED_BAD_USER_OR_PASS", 4),
            ("CONNACK_REFUSED_NOT_AUTHORIZED", 5),
        ] {
            lua.setInteger(name, value)
        }
        lua.setGlobal("mqtt")
    }

    private func warn(_ message: String, on lua: LuaState) {
        runtime.quirkWarnings.warn(message + firmwareSuffix, on: lua)
    }

    /// The firmware's deprecation note, on the device console at every call.
    private func deprecation(_ what: String, _ when: String) {
        runtime.print("Warning, deprecated API! \(what). It will be removed \(when). See documentation for details.")
    }

    // MARK: mqtt.Client

    /// Lua: mqtt.Client([clientid][, keepalive][, username][, password][, cleansession][, max_message_length])
    private func newClient(_ lua: LuaState) throws(LuaError) -> Int32 {
        var fits: [ArgumentSlots.Fit] = [.stringLike, .numberLike, .stringLike, .stringLike, .numberLike]
        if profile == .v3_0 { fits.append(.numberLike) }
        let slots = ArgumentSlots(lua, from: 1, slots: fits)

        let defaultID = "NodeMCU_" + String(runtime.options.chipID, radix: 16)
        let clientID = slots[0].flatMap { lua.bytes(at: $0) } ?? Array(defaultID.utf8)
        let keepAlive = slots[1].flatMap { lua.integer(at: $0) } ?? 0
        let username = slots[2].flatMap { lua.bytes(at: $0) }
        let password = slots[3].flatMap { lua.bytes(at: $0) }
        let cleanSession = slots[4].flatMap { lua.integer(at: $0) }.map { $0 != 0 } ?? (profile == .v2_2)
        var maxMessageLength: Int?
        if profile == .v3_0 {
            // 16-bit on the device; 0 means the default 1024.
            let length = (slots[5].flatMap { lua.integer(at: $0) } ?? 0) & 0xFFFF
            maxMessageLength = length == 0 ? 1024 : length
        }

        var notes = slots.ignoredDescriptions(lua, selfOffset: 0)
        if profile == .v3_0 && slots[4] == nil {
            notes.append("no cleansession given: firmware 3.0 uses 0 (keep the session), although its documentation says 1")
        }
        if !notes.isEmpty { warn("mqtt.Client: " + notes.joined(separator: "; "), on: lua) }

        var configuration = MQTTClientConfiguration(
            maxInflight: runtime.options.maxInflight,
            // 2.2 gives up on the TCP connect after 5 s; 3.0 waits for the network stack.
            tcpConnectTimeout: profile == .v2_2 ? .seconds(5) : .seconds(75),
            maxIncomingPacketSize: maxMessageLength)
        configuration.connectSendTimeout = .seconds(5)
        configuration.connAckTimeout = .seconds(5)
        let core = MQTTClient(network: runtime.network, configuration: configuration)
        let client = LuaMQTTClient(
            module: self, core: core, clientID: clientID,
            keepAlive: UInt16(clamping: keepAlive == 0 ? 60 : keepAlive & 0xFFFF),
            username: username, password: password, cleanSession: cleanSession)
        if runtime.options.trace {
            core.trace = { line in Console.err("nodemcu-host: trace: \(line)\n") }
        }
        core.eventHandler = { [weak client, unowned self] event in
            guard let client else { return }
            handle(event, for: client)
        }
        clientType.push(client, on: lua)
        return 1
    }

    // MARK: m:lwt

    /// Lua: m:lwt(topic, message[, qos[, retain]])
    private func lwt(_ lua: LuaState, _ client: LuaMQTTClient) throws(LuaError) -> Int32 {
        guard let topic = lua.bytes(at: 2) else {
            throw profile == .v2_2 ? lua.typeError(2, expected: "string") : .argument(2, "need lwt topic")
        }
        guard let message = lua.bytes(at: 3) else {
            throw profile == .v2_2 ? lua.typeError(3, expected: "string") : .argument(3, "need lwt message")
        }
        let slots = ArgumentSlots(lua, from: 4, slots: [.numberLike, .numberLike])
        let qos = slots[0].flatMap { lua.integer(at: $0) } ?? 0
        let retain = slots[1].flatMap { lua.integer(at: $0) } ?? 0
        let ignored = slots.ignoredDescriptions(lua, selfOffset: 1, ignoringFalse: true)
        if !ignored.isEmpty { warn("m:lwt: " + ignored.joined(separator: "; "), on: lua) }
        client.will = ConnectPacket.Will(
            topic: topic, message: message, qos: UInt8(truncatingIfNeeded: qos) & 3, retain: retain != 0)
        return 0
    }

    // MARK: m:on

    /// Lua: m:on(event, fn)
    private func on(_ lua: LuaState, _ client: LuaMQTTClient) throws(LuaError) -> Int32 {
        let events: [LuaMQTTClient.Slot] = profile == .v2_2
            ? [.connect, .offline, .message]
            : LuaMQTTClient.Slot.allCases
        switch profile {
        case .v2_2:
            guard let name = lua.string(at: 2) else { throw lua.typeError(2, expected: "string") }
            guard lua.isFunction(3) else { throw lua.typeError(3, expected: "function or lightfunction") }
            guard let slot = events.first(where: { $0.eventName == name }) else { throw .message("method not supported") }
            client.setCallback(slot, from: 3, on: lua)
        case .v3_0:
            guard lua.isFunction(3) else { throw lua.typeError(3, expected: "function") }
            // luaL_checkoption: the event must be string-like before it is looked up.
            guard let name = lua.string(at: 2) else { throw lua.typeError(2, expected: "string") }
            guard let slot = events.first(where: { $0.eventName == name }) else {
                throw .argument(2, "invalid option '\(name)'")
            }
            client.setCallback(slot, from: 3, on: lua)
        }
        return 0
    }

    // MARK: m:connect

    /// Lua: m:connect(host[, port][, secure][, autoreconnect (2.2)][, conn_cb][, fail_cb])
    private func connect(_ lua: LuaState, _ client: LuaMQTTClient) throws(LuaError) -> Int32 {
        switch client.link {
        case .connected, .disconnecting: throw .message("already connected")
        case .idle, .connecting, .closing: break
        }
        if let reason = client.runningConnfailReason, reason == -3 || reason == -5 {
            warn("m:connect inside the connfail(\(reason)) callback: on the device the teardown that follows corrupts this attempt; the host lets it proceed", on: lua)
        }
        guard let host = lua.string(at: 2) else { throw lua.typeError(2, expected: "string") }

        let v22 = profile == .v2_2
        let fits: [ArgumentSlots.Fit] = v22
            ? [.numberLike, .numberLike, .numberLike, .anything, .anything]
            : [.numberLike, .numberOrBoolean, .anything, .anything]
        let slots = ArgumentSlots(lua, from: 3, slots: fits)
        let port = slots[0].flatMap { lua.integer(at: $0) } ?? 1883
        var secure = false
        if let index = slots[1] {
            if v22 {
                secure = lua.integer(at: index) == 1
            } else if lua.type(at: index) == .boolean {
                secure = lua.boolean(at: index)
            } else {
                deprecation("mqtt.connect secure parameter as integer", "in the future")
                secure = (lua.integer(at: index) ?? 0) != 0
            }
        }
        var autoreconnect = false
        if v22, let index = slots[2] {
            autoreconnect = lua.integer(at: index) == 1
            if autoreconnect { deprecation("autoreconnect == 1 is deprecated", "in the next version") }
        }
        let connectSlot = slots[v22 ? 3 : 2]
        let connfailSlot = slots[v22 ? 4 : 3]
        warnAboutConnectQuirks(lua, slots: slots, connectSlot: connectSlot, connfailSlot: connfailSlot)
        if let connectSlot { client.setCallback(.connect, from: connectSlot, on: lua) }
        if let connfailSlot { client.setCallback(.connfail, from: connfailSlot, on: lua) }

        client.autoreconnectRequested = autoreconnect
        client.autoreconnectActive = false
        client.reconnectTask?.cancel()
        let tls: MQTTTLSOptions? = secure ? MQTTTLSOptions() : nil
        client.lastEndpoint = (host, port, tls)
        client.hold(userdataAt: 1, on: lua)
        start(client, host: host, port: port, tls: tls)
        guard v22 else { return 0 }
        lua.push(client.link != .idle)
        return 1
    }

    private func start(_ client: LuaMQTTClient, host: String, port: Int, tls: MQTTTLSOptions?) {
        client.link = .connecting
        do {
            try client.core.connect(host: host, port: port, tls: tls, options: client.connectOptions)
        } catch {
            // Only "already connected", which the link state rules out.
            client.link = .idle
        }
    }

    /// Spec §0.3: warn when the firmware's parsing silently changes what the call meant.
    private func warnAboutConnectQuirks(_ lua: LuaState, slots: ArgumentSlots, connectSlot: Int32?, connfailSlot: Int32?) {
        var notes: [String] = []
        let fullSignaturePosition: Int32 = profile == .v2_2 ? 6 : 5  // stack index of argument 5 / 4
        let connfailIsFunction = connfailSlot.map { lua.isFunction($0) } ?? false
        if let connectSlot, !lua.isFunction(connectSlot) {
            let isNil = lua.isNoneOrNil(connectSlot)
            if !isNil || (connectSlot != fullSignaturePosition && connfailIsFunction) {
                notes.append("argument \(connectSlot - 1) (\(ArgumentSlots.describe(lua, connectSlot))) fills the connect-callback slot")
            }
        }
        if let connfailSlot {
            if connfailIsFunction, !notes.isEmpty {
                notes.append("argument \(connfailSlot - 1) (function) becomes the connfail callback")
            } else if !connfailIsFunction, !lua.isNoneOrNil(connfailSlot) {
                notes.append("argument \(connfailSlot - 1) (\(ArgumentSlots.describe(lua, connfailSlot))) fills the connfail-callback slot")
            }
        }
        notes += slots.ignoredDescriptions(lua, selfOffset: 1)
        if !notes.isEmpty { warn("m:connect: " + notes.joined(separator: "; "), on: lua) }
    }

    // MARK: m:close

    /// Lua: m:close()
    private func close(_ lua: LuaState, _ client: LuaMQTTClient) -> Int32 {
        let v22 = profile == .v2_2
        client.autoreconnectRequested = false
        client.autoreconnectActive = false
        if let task = client.reconnectTask {
            task.cancel()
            client.reconnectTask = nil
            // A 2.2 reconnect was due: the client had been torn down and was held only
            // for it; it ends here.
            if client.link == .idle { client.unhold(on: lua) }
        }
        var result = false
        switch client.link {
        case .connected:
            if v22 {
                client.core.close(.immediate)
                client.link = .closing
                result = true
            } else {
                client.core.close(.queued)
                client.link = .disconnecting
            }
        case .connecting:
            warn("m:close() while DNS or the TCP connect is pending: nothing is cancelled", on: lua)
        case .idle, .closing, .disconnecting:
            break
        }
        guard v22 else { return 0 }
        lua.push(result)
        return 1
    }

    // MARK: publish, subscribe, unsubscribe

    /// The connection check that comes before the arguments (spec §2.10). Returns
    /// the value to return at once (false), nil to go on, or throws.
    private func connectionCheck(_ client: LuaMQTTClient) throws(LuaError) -> Bool? {
        switch (client.link, profile) {
        case (.connected, _): return nil
        case (.disconnecting, _): return nil
        case (.idle, .v2_2): return false
        default: throw .message("not connected")
        }
    }

    /// Lua: m:publish(topic, payload, qos, retain[, fn])
    private func publish(_ lua: LuaState, _ client: LuaMQTTClient) throws(LuaError) -> Int32 {
        if let early = try connectionCheck(client) {
            lua.push(early)
            return 1
        }
        guard lua.isStringLike(2) else { throw lua.typeError(2, expected: "string") }
        guard lua.isStringLike(3) else { throw lua.typeError(3, expected: "string") }
        let qos = try lua.checkInteger(4)
        let retain = try lua.checkInteger(5)
        client.setCallback(.puback, from: 6, on: lua)
        let wireQoS = UInt8(truncatingIfNeeded: qos) & 3
        let retainFlag = retain & 1 != 0
        // Both arguments were checked to be string-like: the closure always runs.
        let result = lua.withBytes(at: 2, 3) { topicBytes, payloadBytes -> Bool in
            let size = 3 + 2 + topicBytes.count + (wireQoS > 0 ? 2 : 0) + payloadBytes.count
            guard !topicBytes.isEmpty, size <= packetLimit, client.link == .connected else {
                // Too large or empty topic: false, the id still used (spec §2.10). After a
                // 3.0 close() the message sits behind the DISCONNECT and is discarded.
                if wireQoS > 0 { client.core.consumePacketID() }
                return client.link == .disconnecting && !topicBytes.isEmpty && size <= packetLimit
            }
            // One copy of both into one buffer; topic and payload are slices of it.
            var bytes = ByteBufferAllocator().buffer(capacity: topicBytes.count + payloadBytes.count)
            bytes.writeBytes(topicBytes)
            bytes.writeBytes(payloadBytes)
            let topic = bytes.readSlice(length: topicBytes.count)!
            do {
                try client.core.publish(topic: topic, payload: bytes, qos: wireQoS, retain: retainFlag)
                return true
            } catch {
                return false
            }
        }
        lua.push(result ?? false)
        return 1
    }

    /// Reads the single or table form of (un)subscribe: topics with their QoS, and
    /// the stack index of the callback argument.
    private func topics(_ lua: LuaState, subscribing: Bool) throws(LuaError) -> (topics: [([UInt8], UInt8)], callback: Int32, tableForm: Bool) {
        if lua.type(at: 2) == .table {
            var topics: [([UInt8], UInt8)] = []
            var failure: LuaError?
            lua.forEach(in: 2) {
                // The firmware checks the key with luaL_checkstring on index -2 first: in a
                // method call that reports as "#-3" (sic), as the value check below as "#-2".
                guard lua.isStringLike(-2) else {
                    failure = .argument(-2, "string expected, got \(lua.typeName(at: -2))")
                    return false
                }
                var qos: UInt8 = 0
                if subscribing {
                    guard let value = lua.integer(at: -1) else {
                        // luaL_checkinteger on index -1 in a method call: "#-2" (sic).
                        failure = .argument(-1, "number expected, got \(lua.typeName(at: -1))")
                        return false
                    }
                    qos = UInt8(truncatingIfNeeded: value)
                }
                // Copy the key before converting: lua_tolstring on a number key would
                // confuse lua_next.
                lua.pushValue(at: -2)
                let topic = lua.bytes(at: -1) ?? []
                lua.pop()
                topics.append((topic, qos))
                return true
            }
            if let failure { throw failure }
            if topics.isEmpty { throw .message("no topics found") }
            return (topics, 3, true)
        }
        guard let topic = lua.bytes(at: 2) else { throw lua.typeError(2, expected: "string") }
        guard subscribing else { return ([(topic, 0)], 3, false) }
        let qos = try lua.checkInteger(3)
        return ([(topic, UInt8(truncatingIfNeeded: qos))], 4, false)
    }

    /// Lua: m:subscribe(topic, qos[, fn]) or m:subscribe({[topic] = qos, …}[, fn])
    private func subscribe(_ lua: LuaState, _ client: LuaMQTTClient) throws(LuaError) -> Int32 {
        try request(lua, client, subscribing: true)
    }

    /// Lua: m:unsubscribe(topic[, fn]) or m:unsubscribe({[topic] = anything, …}[, fn])
    private func unsubscribe(_ lua: LuaState, _ client: LuaMQTTClient) throws(LuaError) -> Int32 {
        try request(lua, client, subscribing: false)
    }

    private func request(_ lua: LuaState, _ client: LuaMQTTClient, subscribing: Bool) throws(LuaError) -> Int32 {
        if let early = try connectionCheck(client) {
            lua.push(early)
            return 1
        }
        let (topics, callbackIndex, tableForm) = try self.topics(lua, subscribing: subscribing)
        let perTopic = subscribing ? 3 : 2
        let size = 3 + 2 + topics.reduce(0) { $0 + perTopic + $1.0.count }
        let fits = size <= packetLimit && !topics.contains { $0.0.isEmpty }
        if tableForm && !fits {
            throw .message("buffer overflow, can't enqueue all \(subscribing ? "subscriptions" : "unsubscriptions")")
        }
        client.setCallback(subscribing ? .suback : .unsuback, from: callbackIndex, on: lua)
        guard fits, client.link == .connected else {
            lua.push(fits && client.link == .disconnecting)
            return 1
        }
        let queued: Bool
        if subscribing {
            queued = (try? client.core.subscribe(topics.map { .init(topicFilter: $0.0, qos: $0.1) })) != nil
        } else {
            queued = (try? client.core.unsubscribe(topics.map(\.0))) != nil
        }
        lua.push(queued)
        return 1
    }

    // MARK: Events from the MQTT core

    /// Turns core events into the firmware's callbacks (spec §2.5, §2.8).
    private func handle(_ event: MQTTClientEvent, for client: LuaMQTTClient) {
        guard !runtime.halted else { return }
        let lua = runtime.lua
        switch event {
        case .tcpConnected:
            client.link = .connected

        case .connected:
            if profile == .v2_2 {
                // 2.2 clears the connfail slot at a good CONNACK: once per connect().
                client.clearCallback(.connfail, on: lua)
                if client.autoreconnectRequested { client.autoreconnectActive = true }
            }
            fire(.connect, client)

        case .connectFailed(let failure):
            if let reason = failure.reason, failure.code == MQTTConnectFailure.serverNotFound,
               client.lastEndpoint?.tls != nil {
                Console.diagnostic("mqtt: secure connection failed: \(reason)")
            }
            let tcpWasUp = failure.code != MQTTConnectFailure.serverNotFound && failure.code != MQTTConnectFailure.dnsFailure
            if client.autoreconnectActive {
                // A failed reconnect attempt: silent, retried (paced at one a second).
                if !tcpWasUp {
                    client.link = .idle
                    scheduleReconnect(client, after: .seconds(1))
                }
                return
            }
            withClient(client) { selfIndex in
                if !tcpWasUp {
                    // Nothing follows a DNS or TCP failure: the client is torn down first,
                    // so connect() inside the callback starts afresh.
                    client.link = .idle
                    client.unhold(on: lua)
                }
                client.runningConnfailReason = failure.code
                invoke(.connfail, client, selfIndex) { lua.push(failure.code); return 1 }
                client.runningConnfailReason = nil
            }

        case .message(let message):
            deliver(message, to: .message, client)
        case .oversizedMessage(let message, _):
            // The 3.0 overflow callback: the payload is the part within max_message_length.
            deliver(message, to: .overflow, client)

        case .published:
            fire(.puback, client)
        case .subscribed:
            fire(.suback, client)
        case .unsubscribed:
            fire(.unsuback, client)

        case .closed(let cause):
            closed(client, cause: cause)
        }
    }

    /// `fn(client, topic[, data])`: data is absent for an empty payload; a message with
    /// an empty topic is dropped (spec §2.5).
    private func deliver(_ message: MQTTMessage, to slot: LuaMQTTClient.Slot, _ client: LuaMQTTClient) {
        let lua = runtime.lua
        guard message.topic.readableBytes > 0, client.pushCallback(slot, on: lua) else { return }
        pushBytes(message.topic, on: lua)
        guard message.payload.readableBytes > 0 else {
            runtime.callback(.network, arguments: 2)
            return
        }
        pushBytes(message.payload, on: lua)
        runtime.callback(.network, arguments: 3)
    }

    private func pushBytes(_ buffer: ByteBuffer, on lua: LuaState) {
        buffer.withUnsafeReadableBytes { lua.push($0) }
    }

    /// Calls the slot's callback with the client as its only argument.
    private func fire(_ slot: LuaMQTTClient.Slot, _ client: LuaMQTTClient) {
        guard client.pushCallback(slot, on: runtime.lua) else { return }
        runtime.callback(.network, arguments: 1)
    }

    /// Runs `body` with the client's userdata on the stack (at the index passed),
    /// so callbacks can still receive it after the client stopped being held.
    private func withClient(_ client: LuaMQTTClient, _ body: (Int32) -> Void) {
        let lua = runtime.lua
        guard let selfRef = client.selfRef else { return }
        lua.push(selfRef)
        let index = lua.top
        body(index)
        if !runtime.isFinished { lua.remove(at: index) }
    }

    /// Calls the slot's callback with the client at `selfIndex` and the arguments
    /// `pushArguments` pushes (it returns their count).
    private func invoke(_ slot: LuaMQTTClient.Slot, _ client: LuaMQTTClient, _ selfIndex: Int32,
                        _ pushArguments: () -> Int32 = { 0 }) {
        let lua = runtime.lua
        guard !runtime.halted, let callback = client.callbackRef(slot) else { return }
        lua.push(callback)
        lua.pushValue(at: selfIndex)
        let count = pushArguments()
        runtime.callback(.network, arguments: 1 + count)
    }

    /// A connection that had been established is over (spec §2.8).
    private func closed(_ client: LuaMQTTClient, cause: MQTTCloseCause) {
        let lua = runtime.lua
        // 2.2: close() on a connected client never fires offline, also when the connection
        // was already ending for another reason (close() inside connfail).
        let wasLocal2_2Close = profile == .v2_2 && (cause == .localClose || client.link == .closing)
        let reconnect = client.autoreconnectActive && !wasLocal2_2Close
        let silent = reconnect && cause != .remoteClosed
        client.link = .idle
        withClient(client) { selfIndex in
            // Teardown happens before the callbacks run: the client is no longer held
            // (unless it reconnects by itself) and connect() works inside them.
            if reconnect {
                scheduleReconnect(client, after: silent ? .seconds(1) : .zero)
            } else {
                client.unhold(on: lua)
            }
            // 3.0 reports an aborted session as connfail(-5) first.
            if profile == .v3_0, case .ioError = cause {
                invoke(.connfail, client, selfIndex) { lua.push(MQTTConnectFailure.serverNotFound); return 1 }
            }
            if !wasLocal2_2Close && !silent {
                invoke(.offline, client, selfIndex)
            }
        }
    }

    /// 2.2 autoreconnect (spec §2.15).
    /// Until the attempt starts the client is torn down (`idle`: publish returns false,
    /// close() returns false and turns autoreconnect off) but still held.
    private func scheduleReconnect(_ client: LuaMQTTClient, after delay: TimeAmount) {
        guard let endpoint = client.lastEndpoint else { return }
        let generation = runtime.generation
        client.reconnectTask = runtime.eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak client, unowned self] in
            guard let client else { return }
            client.reconnectTask = nil
            guard runtime.isCurrent(generation), client.autoreconnectActive, client.link == .idle else { return }
            // The same IP and port as before, without a new DNS lookup; TLS still checks
            // the certificate against the name the script gave.
            guard let address = client.core.remoteAddress, let ip = address.ipAddress, let port = address.port else {
                return start(client, host: endpoint.host, port: endpoint.port, tls: endpoint.tls)
            }
            var tls = endpoint.tls
            if tls != nil, tls?.serverName == nil, (try? SocketAddress(ipAddress: endpoint.host, port: 0)) == nil {
                tls?.serverName = endpoint.host
            }
            start(client, host: ip, port: port, tls: tls)
        }
    }
}
