import LuaBridge
import MQTT
import NIOCore

/// Lua: the `mqtt` module (behaviour spec §2), profiles 2.2 and 3.0: `mqtt.Client` and
/// the constants; the client objects are `MQTTSocket`s.
public final class MQTTModule: LuaModule {
    public static let name = "mqtt"

    unowned let runtime: Runtime
    let socketType: LuaObjectType<MQTTSocket>
    var profile: FirmwareProfile { runtime.profile }

    /// "(firmware 2.2)" at the end of quirk warnings.
    private var firmwareSuffix: String { " (firmware \(profile.rawValue))" }

    /// The outgoing packet buffer of the firmware, with 3 bytes reserved for the
    /// fixed header: a larger publish returns false (spec §2.10).
    var packetLimit: Int { profile == .v2_2 ? 1024 : 1460 }

    public init(runtime: Runtime) {
        self.runtime = runtime
        socketType = LuaObjectType(name: "mqtt.socket", in: runtime.lua, methods: MQTTSocket.methods) { lua, socket in
            socket.dispose(on: lua)
        }
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("Client") { [unowned self] lua throws(LuaError) in try newClient(lua) }
        for (name, value) in [
            ("CONN_FAIL_SERVER_NOT_FOUND", -5), ("CONN_FAIL_NOT_A_CONNACK_MSG", -4), ("CONN_FAIL_DNS", -3),
            ("CONN_FAIL_TIMEOUT_RECEIVING", -2), ("CONN_FAIL_TIMEOUT_SENDING", -1), ("CONNACK_ACCEPTED", 0),
            ("CONNACK_REFUSED_PROTOCOL_VER", 1), ("CONNACK_REFUSED_ID_REJECTED", 2),
            ("CONNACK_REFUSED_SERVER_UNAVAILABLE", 3), ("CONNACK_REFUSED_BAD_USER_OR_PASS", 4),
            ("CONNACK_REFUSED_NOT_AUTHORIZED", 5),
        ] {
            table.integer(name, value)
        }
    }

    func warn(_ message: String, on lua: LuaState) {
        runtime.quirkWarnings.warn(message + firmwareSuffix, on: lua)
    }

    /// The firmware's deprecation note, on the device console at every call.
    func deprecation(_ what: String, _ when: String) {
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
        configuration.keepaliveRule = profile == .v2_2 ? .firmware2_2 : .firmware3_0
        let core = MQTTClient(network: runtime.network, configuration: configuration)
        core.queueBudget = runtime.mqttQueueBudget
        // The PUBACK/PUBREC goes out after the message callback returned, and not at all
        // when its error reboots or ends the device (spec §2.12, §1.3).
        let shownID = String(decoding: clientID, as: UTF8.self)
        core.protocolViolation = { [prefix = runtime.options.diagnosticPrefix] text in
            Console.diagnostic(prefix + "mqtt client \"\(shownID)\": protocol error from the broker: \(text); connection closed")
        }
        core.acknowledgesDelivery = { [unowned runtime] in !runtime.halted }
        let client = MQTTSocket(
            module: self, core: core, clientID: clientID,
            keepAlive: UInt16(clamping: keepAlive == 0 ? 60 : keepAlive & 0xFFFF),
            username: username, password: password, cleanSession: cleanSession)
        if runtime.options.trace {
            core.trace = { [prefix = runtime.options.diagnosticPrefix] line in Console.diagnostic(prefix + "trace: \(line)") }
        }
        core.eventHandler = { [weak client] event in client?.handle(event) }
        socketType.push(client, on: lua)
        return 1
    }
}
