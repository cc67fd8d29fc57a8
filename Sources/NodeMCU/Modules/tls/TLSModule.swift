import HostNet
import LuaBridge
import NIOCore

/// Lua: the `tls` module (behaviour spec §4.5): `tls.createConnection()`, `tls.cert.verify`,
/// `tls.cert.auth`, `tls.setDebug`. Its sockets are `NetSocket`s of kind `.tls`
/// (metatable `tls.socket`).
///
/// Trust: a PEM given to `tls.cert.verify` is what servers are checked against; without
/// one, the system store; `tls.cert.verify(false)` turns checking off. The host's
/// `--cafile` adds a CA to either. mqtt's `secure` and https in `http` use the same
/// settings (`TLSModule.settings(runtime:)`). The settings last for the boot (the
/// device keeps them in flash; the host does not persist them).
///
/// Followed: the spec; `docs/modules/tls.md` of nodemcu/nodemcu-firmware for the forms
/// of `verify`/`auth` (boolean, PEM strings, 3.0 callback).
public final class TLSModule: LuaModule {
    public static let name = "tls"

    unowned let runtime: Runtime
    let socketType: LuaObjectType<NetSocket>

    /// `tls.cert.verify(false)` was called (and not undone by `true` or a PEM).
    var verificationOff = false
    /// The CA certificates given to `tls.cert.verify`.
    var caPEM: [UInt8]?
    /// The client certificate given to `tls.cert.auth`.
    var clientCertificate: TLSSettings.ClientCertificate?
    var debugLevel = 0

    public init(runtime: Runtime) {
        self.runtime = runtime
        socketType = LuaObjectType(name: "tls.socket", in: runtime.lua, methods: NetSocket.tlsMethods) { lua, socket in
            socket.dispose(on: lua)
        }
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("createConnection") { [unowned self] lua throws(LuaError) in try createConnection(lua) }
        table.function("setDebug") { [unowned self] lua throws(LuaError) in try setDebug(lua) }
        table.table("cert", Self.certTable(runtime: runtime))
    }

    /// `tls.cert` (also `net.cert`): the functions find the boot's tls module when called.
    static func certTable(runtime: Runtime) -> LuaModuleTable {
        var cert = LuaModuleTable()
        cert.function("verify") { [unowned runtime] lua throws(LuaError) in
            guard let module = runtime.modules[TLSModule.self] else { throw .message("tls not available") }
            return try module.verify(lua)
        }
        cert.function("auth") { [unowned runtime] lua throws(LuaError) in
            guard let module = runtime.modules[TLSModule.self] else { throw .message("tls not available") }
            return try module.auth(lua)
        }
        return cert
    }

    /// The TLS settings for a new connection of this boot.
    static func settings(runtime: Runtime) -> TLSSettings {
        var settings = runtime.network.configuration.defaultTLS
        guard let module = runtime.modules[TLSModule.self] else { return settings }
        if module.verificationOff {
            settings.verification = .none
        } else if let pem = module.caPEM {
            settings.verification = .certificates(pem: pem)
        }
        settings.clientCertificate = module.clientCertificate
        return settings
    }

    // MARK: Functions

    /// Lua: tls.createConnection()
    private func createConnection(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard let net = runtime.modules[NetModule.self] else { throw .message("net not available") }
        socketType.push(NetSocket(module: net, kind: .tls), on: lua)
        return 1
    }

    /// Lua: tls.setDebug(level) — the device's mbedTLS debug output; the host records it.
    private func setDebug(_ lua: LuaState) throws(LuaError) -> Int32 {
        debugLevel = try lua.optionalInteger(1, default: 0)
        return 0
    }

    /// Lua: tls.cert.verify(enable) / tls.cert.verify(pem[, pem…]) / tls.cert.verify(fn) (3.0)
    func verify(_ lua: LuaState) throws(LuaError) -> Int32 {
        switch lua.type(at: 1) {
        case .none, .nil_:
            break
        case .boolean:
            verificationOff = !lua.boolean(at: 1)
        default:
            let pem = try collectPEM(lua)
            guard TLSSettings.certificateCount(pem: pem) > 0 else { throw .message("no certificates found") }
            caPEM = pem
            verificationOff = false
        }
        lua.push(true)
        return 1
    }

    /// Lua: tls.cert.auth(enable) / tls.cert.auth(pem[, pem…]) / tls.cert.auth(fn) (3.0) —
    /// the client certificate chain and its private key, in any order.
    func auth(_ lua: LuaState) throws(LuaError) -> Int32 {
        switch lua.type(at: 1) {
        case .none, .nil_:
            break
        case .boolean:
            if !lua.boolean(at: 1) { clientCertificate = nil }
        default:
            let blocks = TLSSettings.pemBlocks(try collectPEM(lua))
            let keys = blocks.filter { $0.label.hasSuffix("PRIVATE KEY") }.flatMap(\.pem)
            let certificates = blocks.filter { $0.label == "CERTIFICATE" }.flatMap(\.pem)
            guard TLSSettings.certificateCount(pem: certificates) > 0 else { throw .message("no certificates found") }
            guard TLSSettings.isPrivateKey(pem: keys) else { throw .message("no private key found") }
            clientCertificate = .init(certificatePEM: certificates, privateKeyPEM: keys)
        }
        lua.push(true)
        return 1
    }

    /// The PEM text of the arguments: every string argument, or (3.0) what a callback
    /// returns for index 1, 2, … until it returns nil (index 0 first for `auth`'s key).
    private func collectPEM(_ lua: LuaState) throws(LuaError) -> [UInt8] {
        if lua.isFunction(1), runtime.profile == .v3_0 {
            var pem: [UInt8] = []
            for index in 0..<16 {
                lua.pushValue(at: 1)
                lua.push(index)
                // A protected call: the function is the script's, errors stay Lua's.
                if case .error(let error) = lua.pcall(arguments: 1, results: 1) {
                    lua.push(error.message)
                    throw .raiseTop
                }
                let bytes = lua.bytes(at: -1)
                lua.pop()
                guard let bytes else {
                    if index == 0 { continue }
                    break
                }
                pem += bytes + [0x0A]
            }
            return pem
        }
        var pem: [UInt8] = []
        var index: Int32 = 1
        while index <= lua.top {
            guard let bytes = lua.bytes(at: index) else { throw lua.typeError(index, expected: "string") }
            pem += bytes + [0x0A]
            index += 1
        }
        return pem
    }
}
