import CLibCrypto

/// A hash or HMAC in progress on OpenSSL's libcrypto: an `EVP_MD_CTX` (MD5, SHA1, SHA256,
/// SHA384, SHA512) or an `EVP_MAC_CTX` for the "HMAC" MAC with that digest. Backs
/// `crypto.new_hash` / `crypto.new_hmac` objects and the one-shot `crypto.hash` /
/// `crypto.hmac`.
///
/// `finalize()` digests a copy of the context, so a second call returns the same digest
/// and `update` may go on afterwards (what the module did on swift-crypto).
final class CryptoHasher {
    private enum Context {
        case digest(OpaquePointer)
        case mac(OpaquePointer)
    }

    private let context: Context
    private let libcrypto: nm_LibCrypto

    /// A plain hash (`key` nil) or an HMAC keyed with `key` (any length; long keys are
    /// hashed first, as HMAC says). Nil if libcrypto refuses (e.g. MD5 under a FIPS-only
    /// configuration).
    init?(_ algorithm: CryptoModule.Algorithm, key: [UInt8]?, libcrypto: nm_LibCrypto) {
        self.libcrypto = libcrypto
        if let key {
            guard let mac = libcrypto.EVP_MAC_fetch(nil, "HMAC", nil) else { return nil }
            defer { libcrypto.EVP_MAC_free(mac) }  // the context holds its own reference
            guard let context = libcrypto.EVP_MAC_CTX_new(mac) else { return nil }
            var digestName = Array(algorithm.rawValue.utf8CString)
            // A non-null key pointer even for an empty key: a null one means "keep the key".
            let keyBytes = key.isEmpty ? [0] : key
            // The OSSL_PARAM keeps the pointers it is given: the parameter's name (a C macro
            // Swift imports as a String, whose C string lives only during one call unless
            // held like this) and the digest name must stay valid until EVP_MAC_init returns.
            // (AddressSanitizer caught the name freed before OSSL_PARAM_locate read it.)
            let initialized = OSSL_MAC_PARAM_DIGEST.withCString { parameterName in
                digestName.withUnsafeMutableBufferPointer { name in
                    var parameters = [
                        libcrypto.OSSL_PARAM_construct_utf8_string(parameterName, name.baseAddress, 0),
                        libcrypto.OSSL_PARAM_construct_end(),
                    ]
                    return keyBytes.withUnsafeBufferPointer { libcrypto.EVP_MAC_init(context, $0.baseAddress, key.count, &parameters) }
                }
            }
            guard initialized == 1 else {
                libcrypto.EVP_MAC_CTX_free(context)
                return nil
            }
            self.context = .mac(context)
        } else {
            guard let context = libcrypto.EVP_MD_CTX_new() else { return nil }
            guard libcrypto.EVP_DigestInit_ex(context, algorithm.messageDigest(libcrypto), nil) == 1 else {
                libcrypto.EVP_MD_CTX_free(context)
                return nil
            }
            self.context = .digest(context)
        }
    }

    deinit {
        switch context {
        case .digest(let context): libcrypto.EVP_MD_CTX_free(context)
        case .mac(let context): libcrypto.EVP_MAC_CTX_free(context)
        }
    }

    func update(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        bytes.withUnsafeBufferPointer { buffer in
            switch context {
            case .digest(let context): _ = libcrypto.EVP_DigestUpdate(context, buffer.baseAddress, buffer.count)
            case .mac(let context): _ = libcrypto.EVP_MAC_update(context, buffer.baseAddress, buffer.count)
            }
        }
    }

    /// The digest of everything given to `update` so far; the context itself is unchanged.
    func finalize() -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length = 0
        switch context {
        case .digest(let context):
            guard let copy = libcrypto.EVP_MD_CTX_new() else { return [] }
            defer { libcrypto.EVP_MD_CTX_free(copy) }
            var digestLength: UInt32 = 0
            guard libcrypto.EVP_MD_CTX_copy_ex(copy, context) == 1,
                  libcrypto.EVP_DigestFinal_ex(copy, &output, &digestLength) == 1 else { return [] }
            length = Int(digestLength)
        case .mac(let context):
            guard let copy = libcrypto.EVP_MAC_CTX_dup(context) else { return [] }
            defer { libcrypto.EVP_MAC_CTX_free(copy) }
            guard libcrypto.EVP_MAC_final(copy, &output, &length, output.count) == 1 else { return [] }
        }
        return Array(output.prefix(length))
    }
}

extension CryptoModule.Algorithm {
    /// The libcrypto digest (built-in, not deprecated in OpenSSL 3).
    func messageDigest(_ libcrypto: nm_LibCrypto) -> OpaquePointer? {
        switch self {
        case .md5: libcrypto.EVP_md5()
        case .sha1: libcrypto.EVP_sha1()
        case .sha256: libcrypto.EVP_sha256()
        case .sha384: libcrypto.EVP_sha384()
        case .sha512: libcrypto.EVP_sha512()
        }
    }
}
