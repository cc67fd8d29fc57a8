import CLibCrypto

/// AES-128 in ECB or CBC mode without padding, on OpenSSL's libcrypto (`EVP_aes_128_ecb`,
/// `EVP_aes_128_cbc`, padding off). The caller pads to whole 16-byte blocks.
enum AESCipher {
    enum Mode { case ecb, cbc }

    /// `data` (a multiple of 16 bytes) encrypted or decrypted with the 16-byte `key` and
    /// (CBC) 16-byte `iv`. Nil if libcrypto fails.
    static func run(
        _ mode: Mode, encrypt: Bool, key: [UInt8], iv: [UInt8], data: [UInt8], libcrypto: nm_LibCrypto
    ) -> [UInt8]? {
        precondition(key.count == 16 && iv.count == 16 && data.count % 16 == 0)
        if data.isEmpty { return [] }
        guard let context = libcrypto.EVP_CIPHER_CTX_new() else { return nil }
        defer { libcrypto.EVP_CIPHER_CTX_free(context) }
        let cipher = mode == .ecb ? libcrypto.EVP_aes_128_ecb() : libcrypto.EVP_aes_128_cbc()
        let initialized = key.withUnsafeBufferPointer { key in
            iv.withUnsafeBufferPointer { iv in
                libcrypto.EVP_CipherInit_ex(context, cipher, nil, key.baseAddress, mode == .ecb ? nil : iv.baseAddress, encrypt ? 1 : 0)
            }
        }
        guard initialized == 1, libcrypto.EVP_CIPHER_CTX_set_padding(context, 0) == 1 else { return nil }
        var output = [UInt8](repeating: 0, count: data.count + 16)
        var written: Int32 = 0
        var finalWritten: Int32 = 0
        let ok = output.withUnsafeMutableBufferPointer { output in
            data.withUnsafeBufferPointer { input in
                libcrypto.EVP_CipherUpdate(context, output.baseAddress, &written, input.baseAddress, Int32(input.count)) == 1
                    && libcrypto.EVP_CipherFinal_ex(context, output.baseAddress! + Int(written), &finalWritten) == 1
            }
        }
        guard ok else { return nil }
        return Array(output.prefix(Int(written + finalWritten)))
    }
}
