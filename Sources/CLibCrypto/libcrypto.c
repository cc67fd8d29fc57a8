#include "CLibCrypto.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static nm_LibCrypto nm_functions;
static const nm_LibCrypto *nm_loaded;
static char nm_error[256];
static pthread_once_t nm_once = PTHREAD_ONCE_INIT;

static void nm_load(void) {
    // The soname of the OpenSSL 3 the headers are from; RTLD_LOCAL: nothing else in the
    // process resolves against it.
    void *library = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        snprintf(nm_error, sizeof nm_error, "%s", dlerror());
        return;
    }
#define NM_LIBCRYPTO_RESOLVE(name)                                                     \
    if ((nm_functions.name = (__typeof__(&name))dlsym(library, #name)) == NULL) {      \
        snprintf(nm_error, sizeof nm_error, "libcrypto.so.3 has no %s", #name);       \
        dlclose(library);                                                              \
        return;                                                                        \
    }
    NM_LIBCRYPTO_FUNCTIONS(NM_LIBCRYPTO_RESOLVE)
#undef NM_LIBCRYPTO_RESOLVE
    nm_loaded = &nm_functions;
}

const nm_LibCrypto *nm_libcrypto(void) {
    pthread_once(&nm_once, nm_load);
    return nm_loaded;
}

const char *nm_libcrypto_error(void) {
    pthread_once(&nm_once, nm_load);
    return nm_error;
}
