#ifndef NODEMCU_CLUASHIM_H
#define NODEMCU_CLUASHIM_H

// The C side of the Lua bridge. Swift never raises a Lua error (a longjmp across
// Swift frames skips releases and exclusivity bookkeeping): every Lua-callable
// Swift body runs under nm_trampoline, returns an nm_Status, and the trampoline
// raises after Swift has returned. See DESIGN.md, "Rules of the Lua bridge".

#include <stddef.h>
#include <lua5.3/lua.h>
#include <lua5.3/lauxlib.h>
#include <lua5.3/lualib.h>

/// What a Swift body asks the trampoline to do once Swift has returned.
typedef enum {
    NM_RETURN = 0,   ///< return `value` results from the top of the stack
    NM_ERROR = 1,    ///< raise the string on top, prefixed with the caller's position
    NM_RAISE = 2,    ///< raise the value on top as it is
    NM_ARGERROR = 3, ///< luaL_argerror(value, string on top)
} nm_StatusKind;

typedef struct nm_Status {
    int kind;
    int value;
} nm_Status;

/// Calls the Swift body `function` (an opaque retained box) for a trampoline call.
typedef nm_Status (*nm_Dispatcher)(lua_State *L, void *function);
/// Releases an opaque retained Swift box.
typedef void (*nm_Releaser)(void *box);

/// Installs the process-wide Swift entry points. Called once before any state exists.
void nm_install(nm_Dispatcher dispatcher, nm_Releaser releaser);

/// Creates a state whose collector runs only while Lua code runs (see nm_pcall). With
/// `compact` its blocks come from mimalloc when nm_compact_heaps() is 1, else malloc.
lua_State *nm_newstate(int compact);
/// Whether states can take their blocks from mimalloc (libmimalloc.so.2, loaded once,
/// with RTLD_LOCAL: the process's malloc stays glibc's): 1; 0 if the library is
/// missing; -1 in sanitizer builds (the sanitizer must see every block).
int nm_compact_heaps(void);
/// Closes the state; every pending __gc runs, errors in them are ignored by Lua.
void nm_close(lua_State *L);

/// The device heap budget of a state (see nm_heap_setlimit).
typedef struct nm_HeapStatus {
    int counting;   ///< a budget was set: `used` and `peak` are the script's share
    size_t limit;   ///< the budget in bytes; 0: unlimited
    size_t used;    ///< bytes the script holds now (all bytes of the state if not counting)
    size_t peak;    ///< the highest `used` since counting started
} nm_HeapStatus;

/// Starts counting the script's share of the heap from now (what the state holds
/// already, the host's module tables and prelude, does not count) with a budget of
/// `limit` bytes (0: count without a limit). An allocation past the budget fails as on
/// the device (emergency collection first, then "not enough memory"), except while
/// Swift is in control (never raises into Swift; the overdraft is counted).
void nm_heap_setlimit(lua_State *L, size_t limit);
nm_HeapStatus nm_heap_status(lua_State *L);
/// Charges `bytes` of host-side memory that lives in the device's heap (MQTT queues,
/// socket buffers) to the budget. Returns 0, charging nothing, if it does not fit.
int nm_heap_charge(lua_State *L, size_t bytes);
/// Gives back bytes charged with nm_heap_charge.
void nm_heap_credit(lua_State *L, size_t bytes);
/// on = 1 / 0, nested: while on, what the state allocates is the firmware's (a module
/// table built on first use; flash on the device) and does not count to the budget.
void nm_heap_host(lua_State *L, int on);

/// Pushes a Lua function that runs the Swift body `function` (retained; released
/// when the function is collected or the state is closed).
void nm_pushfunction(lua_State *L, void *function);
/// The same for a function that lives as long as the state (module tables, handle
/// metatables): no userdata box; `function` is released by nm_close.
void nm_pushpinnedfunction(lua_State *L, void *function);

/// Pushes a new full userdata holding the retained pointer `object`, with the
/// metatable stored in the registry at `metatableRef`.
void nm_pushobject(lua_State *L, void *object, int metatableRef);
/// The pointer held by the userdata at `idx` if its metatable is the one at
/// `metatableRef`, else NULL. `*isbox` says whether it is such a userdata at all
/// (a released box still is one, holding NULL).
void *nm_toobject(lua_State *L, int idx, int metatableRef, int *isbox);
/// Takes the pointer out of the userdata at `idx` (which must be an object box),
/// leaving NULL behind; returns the old pointer. Used by __gc and explicit closes
/// so that an object is released exactly once.
void *nm_takeobject(lua_State *L, int idx);

/// Calls the function below `nargs` arguments in protected mode with a traceback
/// message handler. The collector runs during the call only (unless the script
/// stopped it). On error the top holds "<msg>\nstack traceback:\n..." and
/// `*msglen` the length of the "<msg>" part.
int nm_pcall(lua_State *L, int nargs, int nresults, size_t *msglen);
/// luaL_openlibs, then this host's chunk loaders in place of load, loadfile, dofile,
/// string.dump and require's Lua searcher. Call it protected (it allocates).
lua_CFunction nm_openlibs_function(void);
/// Loads a chunk (protected; never raises). Text, or bytecode this host wrote (see
/// nm_checkedload); any other bytecode is refused with an error message.
int nm_load(lua_State *L, const char *buf, size_t len, const char *chunkname);

/// What ended an outermost protected call besides an ordinary error.
enum { NM_TRIP_NONE = 0, NM_TRIP_WATCHDOG = 1, NM_TRIP_INTERRUPT = 2 };

/// Sets the device watchdog: Lua that runs `timeout_ns` without the event loop (or
/// `nm_watchdog_feed`) in between is ended by an error no `pcall` can keep. 0: off.
void nm_watchdog_set(lua_State *L, unsigned long long timeout_ns);
/// Feeds the watchdog (`tmr.wdclr()`); every outermost nm_pcall feeds it too.
void nm_watchdog_feed(lua_State *L);
/// Nanoseconds until the watchdog bites, or -1 when it is off or no Lua runs.
long long nm_watchdog_remaining(lua_State *L);
/// Host code has spent the time since the last look busy for the script (tmr.delay's
/// spin): it counts, however long it was (it is not an off-CPU gap).
void nm_watchdog_spent(lua_State *L);
/// Device time the host simulated without spending it (a virtual `tmr.delay`, a
/// synchronous `gpio.serout`): brings the deadline that much closer.
void nm_watchdog_charge(lua_State *L, unsigned long long ns);
/// Trips the watchdog (NM_TRIP_WATCHDOG) or an interrupt now, from a Swift body: the
/// trampoline raises once the body has returned.
void nm_trip(lua_State *L, int kind);
/// NM_TRIP_* that ended the last outermost nm_pcall (and clears it).
int nm_lasttrip(lua_State *L);
/// Asks the running Lua to stop with "interrupted!" (async-signal-safe: SIGINT).
void nm_request_interrupt(void);
/// Whether an interrupt is pending (for C or Swift loops that run no Lua).
int nm_interrupt_pending(void);

/// node.compile: loads the Lua text file `src` and writes it as host bytecode to
/// `dst`. Returns 0 on success; 1 with the compiler's message on the stack; 2 when
/// `src` cannot be opened; 3 when `dst` cannot be written. Never raises.
int nm_compilefile(lua_State *L, const char *src, const char *dst);

/// Registry field of the host's flash-name resolver, a function (name, forwriting) -> host
/// path or nil: loadfile, dofile, require's Lua searcher and nm_compilefile look file names
/// up through it (the sandbox, and fleet mode's copy-on-write). Without it, names are paths.
#define NM_FLASHPATH_KEY "nodemcu.flashpath"


// Re-exports of macros Swift cannot import.
static inline void nm_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline void nm_newtable(lua_State *L) { lua_newtable(L); }
static inline const char *nm_tostring(lua_State *L, int i) { return lua_tolstring(L, i, NULL); }
static inline int nm_upvalueindex(int i) { return lua_upvalueindex(i); }
static inline int nm_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline void nm_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }
static inline int nm_isnoneornil(lua_State *L, int i) { return lua_type(L, i) <= 0; }
static inline void nm_insert(lua_State *L, int i) { lua_insert(L, i); }
static inline void nm_remove(lua_State *L, int i) { lua_remove(L, i); }
static inline void nm_replace(lua_State *L, int i) { lua_replace(L, i); }
static inline lua_Number nm_tonumber(lua_State *L, int i, int *isnum) { return lua_tonumberx(L, i, isnum); }

#endif
