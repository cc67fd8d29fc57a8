import Board
import LuaBridge
import MQTT
import NIOCore

/// Lua: an `mqtt.socket`, what `mqtt.Client()` returns — the MQTT core client, the
/// callback slots and the firmware's notion of "connected" (TCP-connected, spec §2.2).
/// Its Lua methods are here; core events become callbacks in `+Events`, 2.2's
/// autoreconnect is `+Reconnect`.
final class MQTTSocket: LuaHandle {
    /// One slot per event: the most recently supplied function wins (spec §2.5).
    enum Event: Int, LuaHandleEvent {
        case connect, connfail, offline, message, overflow, puback, suback, unsuback
    }

    /// Where the client is, as the Lua API sees it.
    enum Link {
        /// Never connected, or torn down.
        case idle
        /// DNS lookup or TCP connect pending.
        case connecting
        /// TCP up ("connected"), CONNACK or not.
        case connected
        /// 2.2 after `close()`: "not connected" at once, until the TCP teardown.
        case closing
        /// 3.0 after `close()`: still connected until the queued DISCONNECT is sent.
        case disconnecting
    }

    unowned let module: MQTTModule
    let core: MQTTClient
    @exclusivity(unchecked) var link = Link.idle

    // CONNECT contents (mqtt.Client and m:lwt).
    @exclusivity(unchecked) var clientID: [UInt8]
    @exclusivity(unchecked) var keepAlive: UInt16
    @exclusivity(unchecked) var username: [UInt8]?
    @exclusivity(unchecked) var password: [UInt8]?
    @exclusivity(unchecked) var cleanSession: Bool
    @exclusivity(unchecked) var will: ConnectPacket.Will?

    // 2.2 autoreconnect (spec §2.15).
    @exclusivity(unchecked) var autoreconnectRequested = false
    @exclusivity(unchecked) var autoreconnectActive = false
    @exclusivity(unchecked) var lastEndpoint: (host: String, port: Int, tls: MQTTTLSOptions?)?
    @exclusivity(unchecked) var reconnectTask: ClockTask?

    /// The connfail reason whose callback is running (for the reconnect quirk warning).
    @exclusivity(unchecked) var runningConnfailReason: Int?

    init(module: MQTTModule, core: MQTTClient, clientID: [UInt8], keepAlive: UInt16,
         username: [UInt8]?, password: [UInt8]?, cleanSession: Bool) {
        self.module = module
        self.core = core
        self.clientID = clientID
        self.keepAlive = keepAlive
        self.username = username
        self.password = password
        self.cleanSession = cleanSession
        super.init(runtime: module.runtime, callbackSlots: Event.allCases.count)
    }

    var connectOptions: MQTTConnectOptions {
        MQTTConnectOptions(clientID: clientID, keepAlive: keepAlive, username: username,
                           password: password, will: will, cleanSession: cleanSession)
    }

    var profile: FirmwareProfile { runtime.profile }

    /// The Lua methods of `mqtt.socket`.
    static var methods: [(String, LuaObjectType<MQTTSocket>.Method)] { [
        ("connect", { c, lua throws(LuaError) in try c.connect(lua) }),
        ("close", { c, lua throws(LuaError) in c.close(lua) }),
        ("publish", { c, lua throws(LuaError) in try c.publish(lua) }),
        ("subscribe", { c, lua throws(LuaError) in try c.subscribe(lua) }),
        ("unsubscribe", { c, lua throws(LuaError) in try c.unsubscribe(lua) }),
        ("lwt", { c, lua throws(LuaError) in try c.lwt(lua) }),
        ("on", { c, lua throws(LuaError) in try c.on(lua) }),
    ] }

    private func warn(_ message: String, on lua: LuaState) { module.warn(message, on: lua) }

    // MARK: m:lwt

    /// Lua: m:lwt(topic, message[, qos[, retain]])
    func lwt(_ lua: LuaState) throws(LuaError) -> Int32 {
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
        will = ConnectPacket.Will(
            topic: topic, message: message, qos: UInt8(truncatingIfNeeded: qos) & 3, retain: retain != 0)
        return 0
    }

    // MARK: m:on

    /// Lua: m:on(event, fn)
    func on(_ lua: LuaState) throws(LuaError) -> Int32 {
        let events: [Event] = profile == .v2_2
            ? [.connect, .offline, .message]
            : Event.allCases
        switch profile {
        case .v2_2:
            guard let name = lua.string(at: 2) else { throw lua.typeError(2, expected: "string") }
            guard lua.isFunction(3) else { throw lua.typeError(3, expected: "function or lightfunction") }
            guard let slot = events.first(where: { $0.eventName == name }) else { throw .message("method not supported") }
            setCallback(slot, from: 3, on: lua)
        case .v3_0:
            guard lua.isFunction(3) else { throw lua.typeError(3, expected: "function") }
            // luaL_checkoption: the event must be string-like before it is looked up.
            guard let name = lua.string(at: 2) else { throw lua.typeError(2, expected: "string") }
            guard let slot = events.first(where: { $0.eventName == name }) else {
                throw .argument(2, "invalid option '\(name)'")
            }
            setCallback(slot, from: 3, on: lua)
        }
        return 0
    }

    // MARK: m:connect

    /// Lua: m:connect(host[, port][, secure][, autoreconnect (2.2)][, conn_cb][, fail_cb])
    func connect(_ lua: LuaState) throws(LuaError) -> Int32 {
        switch link {
        case .connected, .disconnecting: throw .message("already connected")
        case .idle, .connecting, .closing: break
        }
        if let reason = runningConnfailReason, reason == -3 || reason == -5 {
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
                module.deprecation("mqtt.connect secure parameter as integer", "in the future")
                secure = (lua.integer(at: index) ?? 0) != 0
            }
        }
        var autoreconnect = false
        if v22, let index = slots[2] {
            autoreconnect = lua.integer(at: index) == 1
            if autoreconnect { module.deprecation("autoreconnect == 1 is deprecated", "in the next version") }
        }
        let connectSlot = slots[v22 ? 3 : 2]
        let connfailSlot = slots[v22 ? 4 : 3]
        warnAboutConnectQuirks(lua, slots: slots, connectSlot: connectSlot, connfailSlot: connfailSlot)
        if let connectSlot { setCallback(Event.connect, from: connectSlot, on: lua) }
        if let connfailSlot { setCallback(Event.connfail, from: connfailSlot, on: lua) }

        autoreconnectRequested = autoreconnect
        autoreconnectActive = false
        reconnectTask?.cancel()
        // The trust tls.cert.verify set up (else the system store), as for tls sockets.
        let tls: MQTTTLSOptions? = secure ? TLSModule.settings(runtime: runtime) : nil
        lastEndpoint = (host, port, tls)
        hold(userdataAt: 1, on: lua)
        start(host: host, port: port, tls: tls)
        guard v22 else { return 0 }
        lua.push(link != .idle)
        return 1
    }

    func start(host: String, port: Int, tls: MQTTTLSOptions?) {
        link = .connecting
        do {
            try core.connect(host: host, port: port, tls: tls, options: connectOptions)
        } catch {
            // Only "already connected", which the link state rules out.
            link = .idle
        }
    }

    /// Spec §0.3: warn when the firmware's parsing silently changes what the call meant.
    func warnAboutConnectQuirks(_ lua: LuaState, slots: ArgumentSlots, connectSlot: Int32?, connfailSlot: Int32?) {
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
    func close(_ lua: LuaState) -> Int32 {
        let v22 = profile == .v2_2
        autoreconnectRequested = false
        autoreconnectActive = false
        if let task = reconnectTask {
            task.cancel()
            reconnectTask = nil
            // A 2.2 reconnect was due: the client had been torn down and was held only
            // for it; it ends here.
            if link == .idle { unhold(on: lua) }
        }
        var result = false
        switch link {
        case .connected:
            if v22 {
                core.close(.immediate)
                link = .closing
                result = true
            } else {
                core.close(.queued)
                link = .disconnecting
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
    func connectionCheck() throws(LuaError) -> Bool? {
        switch (link, profile) {
        case (.connected, _): return nil
        case (.disconnecting, _): return nil
        case (.idle, .v2_2): return false
        default: throw .message("not connected")
        }
    }

    /// Lua: m:publish(topic, payload, qos, retain[, fn])
    func publish(_ lua: LuaState) throws(LuaError) -> Int32 {
        if let early = try connectionCheck() {
            lua.push(early)
            return 1
        }
        guard lua.isStringLike(2) else { throw lua.typeError(2, expected: "string") }
        guard lua.isStringLike(3) else { throw lua.typeError(3, expected: "string") }
        let qos = try lua.checkInteger(4)
        let retain = try lua.checkInteger(5)
        setCallback(Event.puback, from: 6, on: lua)
        let wireQoS = UInt8(truncatingIfNeeded: qos) & 3
        let retainFlag = retain & 1 != 0
        // Both arguments were checked to be string-like: the closure always runs.
        let result = lua.withBytes(at: 2, 3) { topicBytes, payloadBytes -> Bool in
            let size = 3 + 2 + topicBytes.count + (wireQoS > 0 ? 2 : 0) + payloadBytes.count
            guard !topicBytes.isEmpty, size <= module.packetLimit, link == .connected else {
                // Too large or empty topic: false, the id still used (spec §2.10). After a
                // 3.0 close() the message sits behind the DISCONNECT and is discarded.
                if wireQoS > 0 { core.consumePacketID() }
                return link == .disconnecting && !topicBytes.isEmpty && size <= module.packetLimit
            }
            // One copy of both into one buffer; topic and payload are slices of it.
            var bytes = ByteBufferAllocator().buffer(capacity: topicBytes.count + payloadBytes.count)
            bytes.writeBytes(topicBytes)
            bytes.writeBytes(payloadBytes)
            let topic = bytes.readSlice(length: topicBytes.count)!
            do {
                try core.publish(topic: topic, payload: bytes, qos: wireQoS, retain: retainFlag)
                runtime.emit(.mqttPublished(
                    client: ObjectIdentifier(self), topic: Array(topicBytes), payloadBytes: payloadBytes.count,
                    qos: wireQoS, retain: retainFlag))
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
    func topics(_ lua: LuaState, subscribing: Bool) throws(LuaError) -> (topics: [([UInt8], UInt8)], callback: Int32, tableForm: Bool) {
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
    func subscribe(_ lua: LuaState) throws(LuaError) -> Int32 {
        try request(lua, subscribing: true)
    }

    /// Lua: m:unsubscribe(topic[, fn]) or m:unsubscribe({[topic] = anything, …}[, fn])
    func unsubscribe(_ lua: LuaState) throws(LuaError) -> Int32 {
        try request(lua, subscribing: false)
    }

    func request(_ lua: LuaState, subscribing: Bool) throws(LuaError) -> Int32 {
        if let early = try connectionCheck() {
            lua.push(early)
            return 1
        }
        let (topics, callbackIndex, tableForm) = try self.topics(lua, subscribing: subscribing)
        let perTopic = subscribing ? 3 : 2
        let size = 3 + 2 + topics.reduce(0) { $0 + perTopic + $1.0.count }
        let fits = size <= module.packetLimit && !topics.contains { $0.0.isEmpty }
        if tableForm && !fits {
            throw .message("buffer overflow, can't enqueue all \(subscribing ? "subscriptions" : "unsubscriptions")")
        }
        setCallback(subscribing ? Event.suback : Event.unsuback, from: callbackIndex, on: lua)
        guard fits, link == .connected else {
            lua.push(fits && link == .disconnecting)
            return 1
        }
        let queued: Bool
        if subscribing {
            queued = (try? core.subscribe(topics.map { .init(topicFilter: $0.0, qos: $0.1) })) != nil
        } else {
            queued = (try? core.unsubscribe(topics.map(\.0))) != nil
        }
        lua.push(queued)
        return 1
    }

    // MARK: Teardown

    override func abortForReboot() {
        reconnectTask?.cancel()
        reconnectTask = nil
        core.abort()
        link = .idle
        super.abortForReboot()
    }

    /// An unreferenced idle client: free it and its callbacks.
    override func dispose(on lua: LuaState) {
        reconnectTask?.cancel()
        reconnectTask = nil
        core.abort()
        super.dispose(on: lua)
    }
}
