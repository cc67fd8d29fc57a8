#if canImport(Glibc)
import Glibc
#endif
import Crypto
import _CryptoExtras
import Foundation
import LuaBridge

/// Lua: the `crypto` module, both profiles (more-modules §9), after the firmware's
/// app/modules/crypto.c and docs/modules/crypto.md: hashes (MD5, SHA1, SHA256, SHA384,
/// SHA512, any letter case), HMAC, hash objects, `fhash` over the `--fs` folder, `mask`,
/// and AES-ECB / AES-CBC with the firmware's zero padding (data padded with zeros to a
/// multiple of 16, decryption keeps them; 16-byte keys; a missing or short IV is
/// zero-filled, a long one cut to 16). 2.2 also has `toBase64`/`toHex`, which call
/// `encoder` (exactly one argument). The primitives are swift-crypto's (BoringSSL).
public final class CryptoModule: LuaModule {
    public static let name = "crypto"

    unowned let runtime: Runtime
    private var hasherType: LuaObjectType<CryptoHasher>!

    public init(runtime: Runtime) {
        self.runtime = runtime
        hasherType = LuaObjectType(
            name: "crypto.hasher", in: runtime.lua,
            methods: [
                ("update", { hasher, lua throws(LuaError) in try Self.update(hasher, lua) }),
                ("finalize", { hasher, lua throws(LuaError) in Self.finalize(hasher, lua) }),
            ])
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("sha1") { lua throws(LuaError) in try Self.sha1(lua) }
        table.function("hash") { lua throws(LuaError) in try Self.hash(lua) }
        table.function("hmac") { lua throws(LuaError) in try Self.hmac(lua) }
        table.function("fhash") { [unowned self] lua throws(LuaError) in try Self.fhash(lua, options: runtime.options) }
        table.function("new_hash") { [unowned self] lua throws(LuaError) in try newHash(lua) }
        table.function("new_hmac") { [unowned self] lua throws(LuaError) in try newHMAC(lua) }
        table.function("mask") { lua throws(LuaError) in try Self.mask(lua) }
        table.function("encrypt") { lua throws(LuaError) in try Self.cipher(lua, encrypt: true) }
        table.function("decrypt") { lua throws(LuaError) in try Self.cipher(lua, encrypt: false) }
        if runtime.profile == .v2_2 {
            table.function("toBase64") { lua throws(LuaError) in try Self.encode(lua, name: "toBase64", EncoderModule.base64) }
            table.function("toHex") { lua throws(LuaError) in try Self.encode(lua, name: "toHex", EncoderModule.hex) }
        }
    }

    // MARK: Algorithms

    enum Algorithm: String {
        case md5 = "MD5", sha1 = "SHA1", sha256 = "SHA256", sha384 = "SHA384", sha512 = "SHA512"

        func digest(_ data: [UInt8]) -> [UInt8] {
            switch self {
            case .md5: Array(Insecure.MD5.hash(data: data))
            case .sha1: Array(Insecure.SHA1.hash(data: data))
            case .sha256: Array(SHA256.hash(data: data))
            case .sha384: Array(SHA384.hash(data: data))
            case .sha512: Array(SHA512.hash(data: data))
            }
        }

        func hmac(_ data: [UInt8], key: [UInt8]) -> [UInt8] {
            let key = SymmetricKey(data: key)
            switch self {
            case .md5: return Array(HMAC<Insecure.MD5>.authenticationCode(for: data, using: key))
            case .sha1: return Array(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: key))
            case .sha256: return Array(HMAC<SHA256>.authenticationCode(for: data, using: key))
            case .sha384: return Array(HMAC<SHA384>.authenticationCode(for: data, using: key))
            case .sha512: return Array(HMAC<SHA512>.authenticationCode(for: data, using: key))
            }
        }

        func hasher(key: [UInt8]?) -> CryptoHasher {
            switch self {
            case .md5: Incremental<Insecure.MD5>(key: key)
            case .sha1: Incremental<Insecure.SHA1>(key: key)
            case .sha256: Incremental<SHA256>(key: key)
            case .sha384: Incremental<SHA384>(key: key)
            case .sha512: Incremental<SHA512>(key: key)
            }
        }
    }

    private static func algorithm(_ lua: LuaState, _ index: Int32) throws(LuaError) -> Algorithm {
        guard let algorithm = Algorithm(rawValue: try lua.checkString(index).uppercased()) else {
            throw .message("unknown hash mech")
        }
        return algorithm
    }

    // MARK: Functions

    /// Lua: crypto.sha1(input) — the raw 20-byte digest.
    private static func sha1(_ lua: LuaState) throws(LuaError) -> Int32 {
        lua.push(Algorithm.sha1.digest(try lua.checkBytes(1)))
        return 1
    }

    /// Lua: crypto.hash(algo, input) — the raw digest.
    private static func hash(_ lua: LuaState) throws(LuaError) -> Int32 {
        let algorithm = try algorithm(lua, 1)
        lua.push(algorithm.digest(try lua.checkBytes(2)))
        return 1
    }

    /// Lua: crypto.hmac(algo, input, key) — the raw HMAC (long keys hashed first).
    private static func hmac(_ lua: LuaState) throws(LuaError) -> Int32 {
        let algorithm = try algorithm(lua, 1)
        let input = try lua.checkBytes(2)
        lua.push(algorithm.hmac(input, key: try lua.checkBytes(3)))
        return 1
    }

    /// Lua: crypto.fhash(algo, filename) — the digest of a file of the `--fs` folder.
    private static func fhash(_ lua: LuaState, options: RuntimeOptions) throws(LuaError) -> Int32 {
        let algorithm = try algorithm(lua, 1)
        let name = try lua.checkBytes(2)
        let fileSystem = FlashFileSystem(for: options)
        guard case .path(let path) = fileSystem.resolve(name),
              let contents = FileManager.default.contents(atPath: fileSystem.readPath(path)) else {
            throw .message("file does not exist")
        }
        lua.push(algorithm.digest(Array(contents)))
        return 1
    }

    /// Lua: crypto.new_hash(algo) — an object with `update(s)` and `finalize()`.
    private func newHash(_ lua: LuaState) throws(LuaError) -> Int32 {
        let hasher = try Self.algorithm(lua, 1).hasher(key: nil)
        hasherType.push(hasher, on: lua)
        return 1
    }

    /// Lua: crypto.new_hmac(algo, key) — an object with `update(s)` and `finalize()`.
    private func newHMAC(_ lua: LuaState) throws(LuaError) -> Int32 {
        let algorithm = try Self.algorithm(lua, 1)
        let hasher = algorithm.hasher(key: try lua.checkBytes(2))
        hasherType.push(hasher, on: lua)
        return 1
    }

    /// Lua: hasher:update(s) — returns nothing.
    private static func update(_ hasher: CryptoHasher, _ lua: LuaState) throws(LuaError) -> Int32 {
        hasher.update(try lua.checkBytes(2))
        return 0
    }

    /// Lua: hasher:finalize() — the raw digest (again on a second call).
    private static func finalize(_ hasher: CryptoHasher, _ lua: LuaState) -> Int32 {
        lua.push(hasher.finalize())
        return 1
    }

    /// Lua: crypto.mask(message, mask) — XOR with `mask` repeated.
    private static func mask(_ lua: LuaState) throws(LuaError) -> Int32 {
        let message = try lua.checkBytes(1)
        let mask = try lua.checkBytes(2)
        guard !mask.isEmpty else { throw .message("invalid argument: mask") }
        lua.push(message.enumerated().map { $0.element ^ mask[$0.offset % mask.count] })
        return 1
    }

    /// Lua: crypto.encrypt(algo, key, plain[, iv]) / crypto.decrypt(algo, key, cipher[, iv])
    private static func cipher(_ lua: LuaState, encrypt: Bool) throws(LuaError) -> Int32 {
        let name = try lua.checkString(1)
        let mode = name.uppercased()
        guard mode == "AES-ECB" || mode == "AES-CBC" else { throw .message("unknown cipher: \(name)") }
        let key = try lua.checkBytes(2)
        var data = try lua.checkBytes(3)
        var iv = lua.isNoneOrNil(4) ? [] : try lua.checkBytes(4)
        guard key.count == 16 else { throw .message("crypto op failed") }
        if data.count % 16 != 0 { data += [UInt8](repeating: 0, count: 16 - data.count % 16) }
        iv = Array((iv + [UInt8](repeating: 0, count: 16)).prefix(16))
        let symmetricKey = SymmetricKey(data: key)
        let output: [UInt8]
        do {
            if mode == "AES-ECB" {
                var result: [UInt8] = []
                result.reserveCapacity(data.count)
                var offset = 0
                while offset < data.count {
                    var block = Array(data[offset..<offset + 16])
                    if encrypt { try AES.permute(&block, key: symmetricKey) } else { try AES.inversePermute(&block, key: symmetricKey) }
                    result += block
                    offset += 16
                }
                output = result
            } else if data.isEmpty {
                output = []
            } else {
                let vector = try AES._CBC.IV(ivBytes: iv)
                output = encrypt
                    ? Array(try AES._CBC.encrypt(data, using: symmetricKey, iv: vector, noPadding: true))
                    : Array(try AES._CBC.decrypt(data, using: symmetricKey, iv: vector, noPadding: true))
            }
        } catch {
            throw .message("crypto op failed")
        }
        lua.push(output)
        return 1
    }

    /// Lua (2.2): crypto.toBase64(s), crypto.toHex(s) — `encoder`'s, exactly one argument.
    private static func encode(_ lua: LuaState, name: String, _ transform: ([UInt8]) -> [UInt8]) throws(LuaError) -> Int32 {
        guard lua.top == 1 else { throw .message("\(name) must have one argument") }
        lua.push(transform(try lua.checkBytes(1)))
        return 1
    }
}

/// A `crypto.new_hash` / `crypto.new_hmac` object.
class CryptoHasher {
    func update(_ bytes: [UInt8]) {}
    func finalize() -> [UInt8] { [] }
}

private final class Incremental<H: HashFunction>: CryptoHasher {
    private var hash: H?
    private var mac: HMAC<H>?

    init(key: [UInt8]?) {
        if let key { mac = HMAC<H>(key: SymmetricKey(data: key)) } else { hash = H() }
    }

    override func update(_ bytes: [UInt8]) {
        hash?.update(data: bytes)
        mac?.update(data: bytes)
    }

    override func finalize() -> [UInt8] {
        if let hash { return Array(hash.finalize()) }
        if let mac { return Array(mac.finalize()) }
        return []
    }
}
