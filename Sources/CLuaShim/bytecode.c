/* Chunk loading that refuses bytecode this host did not write.

   Lua 5.3 does not verify bytecode: a corrupt or hand-made binary chunk can read and
   write outside the VM's memory. Every path that loads a chunk (the host's own loads,
   load/loadstring, loadfile, dofile and require's Lua-file searcher) goes through
   nm_checkedload: text is compiled as usual; a binary chunk is accepted only with the
   header this host puts in front of everything it dumps (string.dump, node.compile)
   and a checksum over the dump that matches. This stops corrupt files and bytecode
   from other tools (luac, another Lua build); it is a checksum, not a signature, so it
   does not stop someone who forges the header on purpose. */

#include "shim_internal.h"
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>

/* "\x1b" "NMH", format version, three zero bytes, FNV-1a 64 of the dump (LE). */
#define NM_HEADER_SIZE 16
static const char nm_magic[5] = {'\x1b', 'N', 'M', 'H', 1};

static uint64_t nm_checksum(const char *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)LUA_VERSION_NUM;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void nm_header(char out[NM_HEADER_SIZE], const char *dump, size_t n) {
    uint64_t h = nm_checksum(dump, n);
    memset(out, 0, NM_HEADER_SIZE);
    memcpy(out, nm_magic, sizeof nm_magic);
    for (int i = 0; i < 8; i++) out[8 + i] = (char)(h >> (8 * i));
}

/* The chunk name for messages: "@x.lc" -> "x.lc", "=name" -> "name"; a chunk named
   after its own (binary) source, as load(s) does, is "binary string". */
static const char *nm_shownname(const char *chunkname) {
    if (chunkname[0] == '@' || chunkname[0] == '=') return chunkname + 1;
    return "binary string";
}

int nm_checkedload(lua_State *L, const char *buf, size_t len, const char *chunkname, const char *mode) {
    if (len == 0 || buf[0] != LUA_SIGNATURE[0] || strchr(mode, 'b') == NULL) {
        /* Text (or a mode without 'b': Lua itself reports the binary chunk). */
        return luaL_loadbufferx(L, buf, len, chunkname, mode);
    }
    if (len < NM_HEADER_SIZE || memcmp(buf, nm_magic, sizeof nm_magic) != 0) {
        lua_pushfstring(L, "%s: bytecode not written by nodemcu-host refused (Lua 5.3 does not verify "
                        "bytecode; compile the source with node.compile or string.dump on this host)",
                        nm_shownname(chunkname));
        return LUA_ERRSYNTAX;
    }
    char expected[NM_HEADER_SIZE];
    nm_header(expected, buf + NM_HEADER_SIZE, len - NM_HEADER_SIZE);
    if (memcmp(buf, expected, NM_HEADER_SIZE) != 0) {
        lua_pushfstring(L, "%s: corrupt bytecode refused (checksum mismatch)", nm_shownname(chunkname));
        return LUA_ERRSYNTAX;
    }
    return luaL_loadbufferx(L, buf + NM_HEADER_SIZE, len - NM_HEADER_SIZE, chunkname, "b");
}

static int nm_dumpwriter(lua_State *L, const void *p, size_t sz, void *ud) {
    (void)L;
    luaL_addlstring((luaL_Buffer *)ud, (const char *)p, sz);
    return 0;
}

/* Replaces the function on top with its dump, header included. Raises on failure. */
static void nm_pushdump(lua_State *L, int strip) {
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    if (lua_dump(L, nm_dumpwriter, &b, strip) != 0) luaL_error(L, "unable to dump given function");
    luaL_pushresult(&b);
    size_t n;
    const char *dump = lua_tolstring(L, -1, &n);
    char header[NM_HEADER_SIZE];
    nm_header(header, dump, n);
    luaL_Buffer out;
    luaL_buffinit(L, &out);
    luaL_addlstring(&out, header, NM_HEADER_SIZE);
    luaL_addlstring(&out, dump, n);
    luaL_pushresult(&out);
    lua_replace(L, -3);  /* over the function */
    lua_pop(L, 1);       /* the bare dump */
}

/* Lua: string.dump(f[, strip]) -- with this host's header. */
static int nm_lua_dump(lua_State *L) {
    int strip = lua_toboolean(L, 2);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    nm_pushdump(L, strip);
    return 1;
}

/* load's result convention: the function, or nil and the message. */
static int nm_loadresult(lua_State *L, int status, int envidx) {
    if (status == LUA_OK) {
        if (envidx != 0) {
            lua_pushvalue(L, envidx);
            if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
        }
        return 1;
    }
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

/* Lua: load(chunk[, chunkname[, mode[, env]]]) */
static int nm_lua_load(lua_State *L) {
    size_t len;
    const char *s = lua_tolstring(L, 1, &len);
    const char *mode = luaL_optstring(L, 3, "bt");
    int envidx = !lua_isnone(L, 4) ? 4 : 0;
    const char *chunkname;
    if (s == NULL) {
        chunkname = luaL_optstring(L, 2, "=(load)");
        luaL_checktype(L, 1, LUA_TFUNCTION);
        /* Collect what the reader returns, then load it as one piece. */
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (;;) {
            lua_pushvalue(L, 1);
            lua_call(L, 0, 1);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                break;
            }
            if (!lua_isstring(L, -1)) luaL_error(L, "reader function must return a string");
            if (lua_rawlen(L, -1) == 0) {
                lua_pop(L, 1);
                break;
            }
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        s = lua_tolstring(L, -1, &len);
    } else {
        chunkname = luaL_optstring(L, 2, s);
    }
    return nm_loadresult(L, nm_checkedload(L, s, len, chunkname, mode), envidx);
}

/* Where a file name of the device's flash is on the host. With the host's resolver in the
   registry (NM_FLASHPATH_KEY: a function (name, forwriting) -> host path or nil, set by
   the runtime; fleet mode's copy-on-write and the sandbox live there), pushes the host
   path it returns and returns it, or pushes nothing and returns NULL for a name that is
   not on the flash. Without a resolver (bare states) the name is the host path. */
static const char *nm_flashpath(lua_State *L, const char *name, int forwriting) {
    if (lua_getfield(L, LUA_REGISTRYINDEX, NM_FLASHPATH_KEY) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        lua_pushstring(L, name);
        return lua_tostring(L, -1);
    }
    lua_pushstring(L, name);
    lua_pushboolean(L, forwriting);
    lua_call(L, 2, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        return NULL;
    }
    return lua_tostring(L, -1);
}

/* Pushes the contents of `fname` (stdin when NULL) as luaL_loadfilex reads them: a
   UTF-8 BOM and a first line starting with '#' are skipped (its newline is kept).
   Returns LUA_OK, or LUA_ERRFILE with the message pushed. */
static int nm_readfile(lua_State *L, const char *fname) {
    FILE *f = stdin;
    if (fname != NULL) {
        const char *path = nm_flashpath(L, fname, 0);
        f = path == NULL ? NULL : fopen(path, "rb");
        int error = path == NULL ? ENOENT : errno;
        if (path != NULL) lua_pop(L, 1);
        if (f == NULL) {
            lua_pushfstring(L, "cannot open %s: %s", fname, strerror(error));
            return LUA_ERRFILE;
        }
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) luaL_addlstring(&b, chunk, n);
    int failed = ferror(f);
    if (fname != NULL) fclose(f);
    luaL_pushresult(&b);
    if (failed) {
        lua_pop(L, 1);
        lua_pushfstring(L, "cannot read %s", fname ? fname : "stdin");
        return LUA_ERRFILE;
    }
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    size_t skip = 0;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) skip = 3;
    if (skip < len && s[skip] == '#') {
        while (skip < len && s[skip] != '\n') skip++;
    }
    if (skip > 0) {
        lua_pushlstring(L, s + skip, len - skip);
        lua_replace(L, -2);
    }
    return LUA_OK;
}

/* Loads a file as loadfile does: the function, or the message and an error status. */
static int nm_loadfile(lua_State *L, const char *fname, const char *mode) {
    int status = nm_readfile(L, fname);
    if (status != LUA_OK) return status;
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (fname == NULL) lua_pushliteral(L, "=stdin");
    else lua_pushfstring(L, "@%s", fname);
    status = nm_checkedload(L, s, len, lua_tostring(L, -1), mode);
    lua_replace(L, -3);  /* result over the contents */
    lua_pop(L, 1);       /* the chunk name */
    return status;
}

/* Lua: loadfile([filename[, mode[, env]]]) */
static int nm_lua_loadfile(lua_State *L) {
    const char *fname = luaL_optstring(L, 1, NULL);
    const char *mode = luaL_optstring(L, 2, "bt");
    int envidx = !lua_isnone(L, 3) ? 3 : 0;
    return nm_loadresult(L, nm_loadfile(L, fname, mode), envidx);
}

/* Lua: dofile([filename]) */
static int nm_lua_dofile(lua_State *L) {
    const char *fname = luaL_optstring(L, 1, NULL);
    lua_settop(L, 1);
    if (nm_loadfile(L, fname, "bt") != LUA_OK) return lua_error(L);
    lua_call(L, 0, LUA_MULTRET);
    return lua_gettop(L) - 1;
}

/* Whether `filename` (a name of package.path's templates) is a readable file of the flash. */
static int nm_readable(lua_State *L, const char *filename) {
    const char *path = nm_flashpath(L, filename, 0);
    if (path == NULL) return 0;
    FILE *f = fopen(path, "r");
    lua_pop(L, 1);
    if (f == NULL) return 0;
    fclose(f);
    return 1;
}

/* package.searchpath's search over the flash: pushes the first readable file name, or nil
   and the list of names tried (package.searchpath's message). */
static int nm_searchpath(lua_State *L, const char *name, const char *path) {
    luaL_Buffer tried;
    name = luaL_gsub(L, name, ".", LUA_DIRSEP);
    int nameindex = lua_gettop(L);
    luaL_buffinit(L, &tried);
    for (const char *p = path; *p != '\0';) {
        const char *end = strchr(p, *LUA_PATH_SEP);
        size_t len = end == NULL ? strlen(p) : (size_t)(end - p);
        lua_pushlstring(L, p, len);
        const char *filename = luaL_gsub(L, lua_tostring(L, -1), LUA_PATH_MARK, name);
        lua_remove(L, -2);  /* the template */
        p += len + (end != NULL);
        if (len == 0) {
            lua_pop(L, 1);
            continue;
        }
        if (nm_readable(L, filename)) {
            lua_replace(L, nameindex);  /* the found name over the module name */
            lua_settop(L, nameindex);   /* drops the buffer */
            return 1;
        }
        lua_pushfstring(L, "\n\tno file '%s'", filename);
        lua_remove(L, -2);  /* the file name */
        luaL_addvalue(&tried);
    }
    luaL_pushresult(&tried);
    lua_replace(L, nameindex);
    lua_settop(L, nameindex);
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

/* require's searcher for Lua files (package.searchers[2]), through nm_loadfile: the file
   is looked up on the flash (fleet mode: the device's folder, then the shared one). */
static int nm_searcher_lua(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "package");
    if (lua_getfield(L, -1, "path") != LUA_TSTRING) luaL_error(L, "'package.path' must be a string");
    if (nm_searchpath(L, name, lua_tostring(L, -1)) == 2) return 1;  /* the list of files tried */
    const char *filename = lua_tostring(L, -1);
    if (nm_loadfile(L, filename, "bt") != LUA_OK) {
        return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s", name, filename,
                          lua_tostring(L, -1));
    }
    lua_pushstring(L, filename);
    return 2;
}

/* Debian's library has it (built with LUA_COMPAT_5_2); its header does not declare it. */
LUAMOD_API int (luaopen_bit32) (lua_State *L);

/* The standard libraries nothing of the host's setup touches are built on first use,
   as the firmware's modules are (ModuleRegistry): a stub table in _G and
   package.loaded whose metatable opens the library on the first __index, __newindex or
   __pairs and copies it into the stub, which then loses the metatable. On the device
   the standard libraries are read-only tables in flash; here each costs 0.5-0.9 KB of
   every state (a fleet has thousands). Until first use only next(), rawget() and
   getmetatable() on the stub can tell. */
static const struct { const char *name; lua_CFunction open; } nm_lazylibs[] = {
    {"coroutine", luaopen_coroutine},
    {"io", luaopen_io},
    {"os", luaopen_os},
    {"bit32", luaopen_bit32},
    {"utf8", luaopen_utf8},
    {NULL, NULL},
};
#define NM_LAZYLIBS "nm.lazylibs" /* registry: stub -> index in nm_lazylibs */
#define NM_NEXT "nm.next"         /* registry: the base library's next */

static void nm_buildlib(lua_State *L, int stub) {
    stub = lua_absindex(L, stub);
    if (lua_getfield(L, LUA_REGISTRYINDEX, NM_LAZYLIBS) != LUA_TTABLE) {
        lua_pop(L, 1);
        return;
    }
    lua_pushvalue(L, stub);
    if (lua_rawget(L, -2) != LUA_TNUMBER) {
        lua_pop(L, 2);
        return;
    }
    int i = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, stub);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    nm_heap_host(L, 1);  /* the firmware's, not the script's heap; never refused */
    lua_pushnil(L);
    lua_setmetatable(L, stub);
    lua_pushcfunction(L, nm_lazylibs[i].open);
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {  /* out of C memory: end the firmware build first */
        nm_heap_host(L, 0);
        lua_error(L);
    }
    /* What the host set into the stub before (fleet mode's os.exit) stays. */
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        lua_pushvalue(L, -2);
        if (lua_rawget(L, stub) == LUA_TNIL) {
            lua_pop(L, 1);
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, stub);
        } else {
            lua_pop(L, 2);
        }
    }
    lua_pop(L, 1);
    nm_heap_host(L, 0);
}

static int nm_lazy_index(lua_State *L) {
    nm_buildlib(L, 1);
    lua_settop(L, 2);
    lua_rawget(L, 1);
    return 1;
}

static int nm_lazy_newindex(lua_State *L) {
    nm_buildlib(L, 1);
    lua_settop(L, 3);
    lua_rawset(L, 1);
    return 0;
}

static int nm_lazy_pairs(lua_State *L) {
    nm_buildlib(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, NM_NEXT);
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* luaL_openlibs's libraries in its order, the lazy ones as stubs. */
static int nm_openlibs_body(lua_State *L) {
    static const luaL_Reg eager[] = {
        {"_G", luaopen_base}, {"package", luaopen_package}, {"table", luaopen_table},
        {"string", luaopen_string}, {"math", luaopen_math},
        {"debug", luaopen_debug}, {NULL, NULL},
    };
    for (const luaL_Reg *lib = eager; lib->name != NULL; lib++) {
        luaL_requiref(L, lib->name, lib->func, 1);
        lua_pop(L, 1);
    }
    lua_getglobal(L, "next");
    lua_setfield(L, LUA_REGISTRYINDEX, NM_NEXT);
    lua_newtable(L); /* stub -> index */
    lua_createtable(L, 0, 3); /* the stubs' metatable */
    lua_pushcfunction(L, nm_lazy_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, nm_lazy_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, nm_lazy_pairs);
    lua_setfield(L, -2, "__pairs");
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    for (int i = 0; nm_lazylibs[i].name != NULL; i++) {
        lua_newtable(L);
        lua_pushvalue(L, -3);
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_pushinteger(L, i);
        lua_rawset(L, -6);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, nm_lazylibs[i].name); /* package.loaded */
        lua_setglobal(L, nm_lazylibs[i].name);
    }
    lua_pop(L, 2);
    lua_setfield(L, LUA_REGISTRYINDEX, NM_LAZYLIBS);
    nm_install_loaders(L);
    return 0;
}

lua_CFunction nm_openlibs_function(void) { return nm_openlibs_body; }

void nm_install_loaders(lua_State *L) {
    lua_pushglobaltable(L);
    lua_pushcfunction(L, nm_lua_load);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, nm_lua_loadfile);
    lua_setfield(L, -2, "loadfile");
    lua_pushcfunction(L, nm_lua_dofile);
    lua_setfield(L, -2, "dofile");
    if (lua_getfield(L, -1, "string") == LUA_TTABLE) {
        lua_pushcfunction(L, nm_lua_dump);
        lua_setfield(L, -2, "dump");
    }
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "package") == LUA_TTABLE && lua_getfield(L, -1, "searchers") == LUA_TTABLE) {
        lua_pushcfunction(L, nm_searcher_lua);
        lua_rawseti(L, -2, 2);
    }
    lua_settop(L, 0);
}

/* node.compile: the body, run protected by nm_compilefile. */
struct nm_compilejob {
    const char *src;
    const char *dst;
    int result;
};

static int nm_compile_body(lua_State *L) {
    struct nm_compilejob *job = (struct nm_compilejob *)lua_touserdata(L, 1);
    int status = nm_loadfile(L, job->src, "t");
    if (status == LUA_ERRFILE) {
        job->result = 2;
        return 0;
    }
    if (status != LUA_OK) {
        job->result = 1;
        return 1;  /* the compiler's message */
    }
    nm_pushdump(L, 0);
    size_t n;
    const char *bytes = lua_tolstring(L, -1, &n);
    const char *dst = nm_flashpath(L, job->dst, 1);
    FILE *f = dst == NULL ? NULL : fopen(dst, "wb");
    int ok = f != NULL && fwrite(bytes, 1, n, f) == n;
    if (f != NULL && fclose(f) != 0) ok = 0;
    job->result = ok ? 0 : 3;
    return 0;
}

int nm_compilefile(lua_State *L, const char *src, const char *dst) {
    struct nm_compilejob job = {src, dst, 0};
    int top = lua_gettop(L);
    lua_pushcfunction(L, nm_compile_body);
    lua_pushlightuserdata(L, &job);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        return 1;  /* out of memory: the message is on top */
    }
    if (job.result == 1) return 1;
    lua_settop(L, top);
    return job.result;
}
