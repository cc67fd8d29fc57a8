#ifndef NODEMCU_CLIBCRYPTO_H
#define NODEMCU_CLIBCRYPTO_H

// OpenSSL 3's libcrypto for the crypto module, loaded on its first use (dlopen) rather
// than at start: a script that never calls `crypto` does not pay the library's 1.4 MiB
// of resident tables (bench/NOTES.md, session 9). The headers give the types and
// constants; the functions are called only through the table nm_libcrypto() returns.
// The binary does not link libcrypto, so a direct call to an EVP_ function is a link
// error, not a silent second copy.

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/// Every libcrypto function the crypto module calls: X(name).
#define NM_LIBCRYPTO_FUNCTIONS(X) \
    X(EVP_MD_CTX_new) X(EVP_MD_CTX_free) X(EVP_MD_CTX_copy_ex) \
    X(EVP_DigestInit_ex) X(EVP_DigestUpdate) X(EVP_DigestFinal_ex) \
    X(EVP_md5) X(EVP_sha1) X(EVP_sha256) X(EVP_sha384) X(EVP_sha512) \
    X(EVP_MAC_fetch) X(EVP_MAC_free) X(EVP_MAC_CTX_new) X(EVP_MAC_CTX_free) \
    X(EVP_MAC_CTX_dup) X(EVP_MAC_init) X(EVP_MAC_update) X(EVP_MAC_final) \
    X(OSSL_PARAM_construct_utf8_string) X(OSSL_PARAM_construct_end) \
    X(EVP_CIPHER_CTX_new) X(EVP_CIPHER_CTX_free) X(EVP_CIPHER_CTX_set_padding) \
    X(EVP_CipherInit_ex) X(EVP_CipherUpdate) X(EVP_CipherFinal_ex) \
    X(EVP_aes_128_ecb) X(EVP_aes_128_cbc)

/// The functions, each typed as libcrypto's own prototype (so a wrong call is a compile
/// error in Swift as it was with the library linked).
typedef struct nm_LibCrypto {
#define NM_LIBCRYPTO_FIELD(name) __typeof__(&name) _Nonnull name;
    NM_LIBCRYPTO_FUNCTIONS(NM_LIBCRYPTO_FIELD)
#undef NM_LIBCRYPTO_FIELD
} nm_LibCrypto;

/// libcrypto's functions, loaded on the first call (once per process, thread-safe);
/// NULL if the library or one of its functions could not be loaded.
const nm_LibCrypto *_Nullable nm_libcrypto(void);

/// Why nm_libcrypto() returned NULL (dlopen's or dlsym's message); "" if it did not.
const char *_Nonnull nm_libcrypto_error(void);

#endif
