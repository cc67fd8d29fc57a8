import CLibCrypto
import LuaBridge

/// Lua: the `crypto` module, both profiles (more-modules §9), after the firmware's
/// app/modules/crypto.c and docs/modules/crypto.md: hashes (MD5, SHA1, SHA256, SHA384,
/// SHA512, any letter case), HMAC, hash objects, `fhash` over the `--fs` folder, `mask`,
/// and AES-ECB / AES-CBC with the firmware's zero padding (data padded with zeros to a
/// multiple of 16, decryption keeps them; 16-byte keys; a missing or short IV is
/// zero-filled, a long one cut to 16). 2.2 also has `toBase64`/`toHex`, which call
/// `encoder` (exactly one argument). The primitives are OpenSSL's libcrypto (`CLibCrypto`,
/// loaded at the first call that needs it: 1.4 MiB of idle memory otherwise, bench/NOTES.md,
/// session 9): EVP digests and the EVP_MAC "HMAC" in `CryptoHasher`, EVP AES-128 ECB/CBC
/// without padding in `AESCipher`; no Foundation (swift-crypto linked it: 3.4 MiB of idle
/// memory, session 7).
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

        /// The raw digest of `data`, or the HMAC with `key`; nil if libcrypto fails.
        func digest(_ data: [UInt8], key: [UInt8]? = nil, libcrypto: nm_LibCrypto) -> [UInt8]? {
            guard let hasher = CryptoHasher(self, key: key, libcrypto: libcrypto) else { return nil }
            hasher.update(data)
            return hasher.finalize()
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
        lua.push(try digest(.sha1, try lua.checkBytes(1)))
        return 1
    }

    /// Lua: crypto.hash(algo, input) — the raw digest.
    private static func hash(_ lua: LuaState) throws(LuaError) -> Int32 {
        let algorithm = try algorithm(lua, 1)
        lua.push(try digest(algorithm, try lua.checkBytes(2)))
        return 1
    }

    /// Lua: crypto.hmac(algo, input, key) — the raw HMAC (long keys hashed first).
    private static func hmac(_ lua: LuaState) throws(LuaError) -> Int32 {
        let algorithm = try algorithm(lua, 1)
        let input = try lua.checkBytes(2)
        lua.push(try digest(algorithm, input, key: try lua.checkBytes(3)))
        return 1
    }

    /// Lua: crypto.fhash(algo, filename) — the digest of a file of the `--fs` folder.
    private static func fhash(_ lua: LuaState, options: RuntimeOptions) throws(LuaError) -> Int32 {
        let algorithm = try algorithm(lua, 1)
        let name = try lua.checkBytes(2)
        let fileSystem = FlashFileSystem(for: options)
        guard case .path(let path) = fileSystem.resolve(name),
              let contents = fileSystem.contents(of: fileSystem.readPath(path)) else {
            throw .message("file does not exist")
        }
        lua.push(try digest(algorithm, contents))
        return 1
    }

    /// Lua: crypto.new_hash(algo) — an object with `update(s)` and `finalize()`.
    private func newHash(_ lua: LuaState) throws(LuaError) -> Int32 {
        let algorithm = try Self.algorithm(lua, 1)
        guard let hasher = CryptoHasher(algorithm, key: nil, libcrypto: try Self.libcrypto()) else {
            throw .message("crypto op failed")
        }
        hasherType.push(hasher, on: lua)
        return 1
    }

    /// Lua: crypto.new_hmac(algo, key) — an object with `update(s)` and `finalize()`.
    private func newHMAC(_ lua: LuaState) throws(LuaError) -> Int32 {
        let algorithm = try Self.algorithm(lua, 1)
        let key = try lua.checkBytes(2)
        guard let hasher = CryptoHasher(algorithm, key: key, libcrypto: try Self.libcrypto()) else {
            throw .message("crypto op failed")
        }
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
        let libcrypto = try Self.libcrypto()
        guard let output = AESCipher.run(
            mode == "AES-ECB" ? .ecb : .cbc, encrypt: encrypt, key: key, iv: iv, data: data, libcrypto: libcrypto)
        else {
            throw .message("crypto op failed")
        }
        lua.push(output)
        return 1
    }

    /// `algorithm`'s digest (or HMAC with `key`) of `data`, as a Lua error if libcrypto fails.
    private static func digest(_ algorithm: Algorithm, _ data: [UInt8], key: [UInt8]? = nil) throws(LuaError) -> [UInt8] {
        guard let digest = algorithm.digest(data, key: key, libcrypto: try libcrypto()) else {
            throw .message("crypto op failed")
        }
        return digest
    }

    /// libcrypto's functions, loaded at the first call that needs them. Missing (a host
    /// without OpenSSL 3's libcrypto.so.3; the device always has its crypto): a Lua error
    /// that says so, rather than the device's "crypto op failed".
    private static func libcrypto() throws(LuaError) -> nm_LibCrypto {
        guard let functions = nm_libcrypto() else {
            throw .message("crypto: libcrypto could not be loaded (\(String(cString: nm_libcrypto_error())))")
        }
        return functions.pointee
    }

    /// Lua (2.2): crypto.toBase64(s), crypto.toHex(s) — `encoder`'s, exactly one argument.
    private static func encode(_ lua: LuaState, name: String, _ transform: ([UInt8]) -> [UInt8]) throws(LuaError) -> Int32 {
        guard lua.top == 1 else { throw .message("\(name) must have one argument") }
        lua.push(transform(try lua.checkBytes(1)))
        return 1
    }
}
