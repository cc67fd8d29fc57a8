#ifndef NODEMCU_SHIM_INTERNAL_H
#define NODEMCU_SHIM_INTERNAL_H

#include "CLuaShim.h"

/* VM instructions between two looks at the watchdog's clock. */
#define NM_HOOK_INTERVAL 1000

void nm_hook(lua_State *L, lua_Debug *ar);

/* bytecode.c: the chunk loaders that refuse bytecode this host did not write. */
int nm_checkedload(lua_State *L, const char *buf, size_t len, const char *chunkname, const char *mode);
void nm_install_loaders(lua_State *L);

#endif
