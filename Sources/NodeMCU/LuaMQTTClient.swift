import LuaBridge
import MQTT
import NIOCore

/// One Lua `mqtt.Client`: the MQTT core client, the callback slots and the
/// firmware's notion of "connected" (TCP-connected, spec §2.2).
final class LuaMQTTClient: RuntimeHandle {
    /// One slot per event: the most recently supplied function wins (spec §2.5).
    enum Slot: Int, CaseIterable {
        case connect, connfail, offline, message, overflow, puback, suback, unsuback

        var eventName: String {
            switch self {
            case .connect: return "connect"
            case .connfail: return "connfail"
            case .offline: return "offline"
            case .message: return "message"
            case .overflow: return "overflow"
            case .puback: return "puback"
            case .suback: return "suback"
            case .unsuback: return "unsuback"
            }
        }
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
    var link = Link.idle

    // CONNECT contents (mqtt.Client and m:lwt).
    var clientID: [UInt8]
    var keepAlive: UInt16
    var username: [UInt8]?
    var password: [UInt8]?
    var cleanSession: Bool
    var will: ConnectPacket.Will?

    private var callbacks = [LuaRef?](repeating: nil, count: Slot.allCases.count)
    /// The client's own userdata while it is held (from connect() to teardown).
    var selfRef: LuaRef?

    // 2.2 autoreconnect (spec §2.15).
    var autoreconnectRequested = false
    var autoreconnectActive = false
    var lastEndpoint: (host: String, port: Int, tls: MQTTTLSOptions?)?
    var reconnectTask: Scheduled<Void>?

    /// The connfail reason whose callback is running (for the reconnect quirk warning).
    var runningConnfailReason: Int?

    init(module: MQTTModule, core: MQTTClient, clientID: [UInt8], keepAlive: UInt16,
         username: [UInt8]?, password: [UInt8]?, cleanSession: Bool) {
        self.module = module
        self.core = core
        self.clientID = clientID
        self.keepAlive = keepAlive
        self.username = username
        self.password = password
        self.cleanSession = cleanSession
    }

    var connectOptions: MQTTConnectOptions {
        MQTTConnectOptions(clientID: clientID, keepAlive: keepAlive, username: username,
                           password: password, will: will, cleanSession: cleanSession)
    }

    // MARK: Callback slots

    func setCallback(_ slot: Slot, from index: Int32, on lua: LuaState) {
        guard lua.isFunction(index) else { return }
        if let old = callbacks[slot.rawValue] { lua.unref(old) }
        callbacks[slot.rawValue] = lua.ref(at: index)
    }

    func clearCallback(_ slot: Slot, on lua: LuaState) {
        if let old = callbacks[slot.rawValue] { lua.unref(old) }
        callbacks[slot.rawValue] = nil
    }

    func callbackRef(_ slot: Slot) -> LuaRef? { callbacks[slot.rawValue] }

    func releaseCallbacks(on lua: LuaState) {
        for slot in Slot.allCases { clearCallback(slot, on: lua) }
    }

    /// Pushes the slot's function and the client, or nothing (returns false) when
    /// the slot is empty or the client is not held.
    func pushCallback(_ slot: Slot, on lua: LuaState) -> Bool {
        guard let callback = callbacks[slot.rawValue], let selfRef else { return false }
        lua.push(callback)
        lua.push(selfRef)
        return true
    }

    // MARK: Lifetime

    /// Keeps the client (and the process) alive while it is connecting or connected.
    func hold(userdataAt index: Int32, on lua: LuaState) {
        if selfRef == nil { selfRef = lua.ref(at: index) }
        module.runtime.retain(self)
    }

    /// Lets the client be collected once its connection is over.
    func unhold(on lua: LuaState) {
        if let selfRef { lua.unref(selfRef) }
        selfRef = nil
        module.runtime.release(self)
    }

    func abortForReboot() {
        reconnectTask?.cancel()
        reconnectTask = nil
        core.abort()
        link = .idle
    }
}
