#include "CLuaShim.h"
#include "shim_internal.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Ctrl-C (set by the SIGINT handler through nm_request_interrupt). Atomic, not just
   volatile: in fleet mode every device thread clears it at its outermost pcall
   (ThreadSanitizer reported those plain writes as a data race). Lock-free, so the
   handler may set it; relaxed, because it orders nothing else. */
static atomic_int nm_interrupt_flag = 0;

static nm_Dispatcher nm_dispatch;
static nm_Releaser nm_release;

void nm_install(nm_Dispatcher dispatcher, nm_Releaser releaser) {
    nm_dispatch = dispatcher;
    nm_release = releaser;
}

/* Per-state bookkeeping kept in the state's extra space. */
typedef struct nm_Extra {
    int gcheld;          /* the collector is held (Swift is in control): see nm_gchold */
    int functionmeta;    /* registry ref of the metatable of function boxes */
    int errlenset;       /* nm_traceback ran since the last nm_pcall collected errlen */
    size_t errlen;       /* length of the "<msg>" part of the last traceback */
    int depth;           /* nm_pcall nesting: 0 = no Lua running under the host */
    int tripped;         /* NM_TRIP_*: the hook raises until depth is back at 0 */
    int lasttrip;        /* what ended the last outermost nm_pcall (nm_lasttrip) */
    unsigned long long wdtimeout;   /* watchdog timeout in ns; 0 = none */
    unsigned long long wddeadline;  /* monotonic ns at which the watchdog bites */
    unsigned long long wdchecked;   /* monotonic ns of the last look at the deadline */
} nm_Extra;

static nm_Extra *extra(lua_State *L) { return *(nm_Extra **)lua_getextraspace(L); }

/* __gc of function boxes and object boxes: release the Swift object once. */
static int nm_boxgc(lua_State *L) {
    void **slot = (void **)lua_touserdata(L, 1);
    if (slot != NULL && *slot != NULL) {
        void *box = *slot;
        *slot = NULL;
        nm_release(box);
    }
    return 0;
}

/* While Swift is in control no GC step may run: a __gc that raises would unwind
   through Swift frames. The collector is held by a huge credit on its debt rather than
   stopped: LUA_GCRESTART zeroes the debt, so restarting after every bridged call made
   the next allocation start a step each time, far beyond Lua's own pacing (measured in
   bench/NOTES.md). A negative LUA_GCSTEP only moves the debt and runs no step while the
   debt is negative, so holding is safe anywhere. Releasing gives the credit back exactly
   and may run a step (hence a __gc), so it happens only where a Lua error can unwind: in
   the trampoline after Swift returned, and under protection in nm_pcall. A collector the
   script stopped is left alone (no step runs while it is stopped). */
#define NM_GC_HOLD_KB (1 << 30)

/* Returns 1 if this call applied the hold. */
static int nm_gchold(lua_State *L) {
    nm_Extra *e = extra(L);
    if (e->gcheld || !lua_gc(L, LUA_GCISRUNNING, 0)) return 0;
    e->gcheld = 1;
    lua_gc(L, LUA_GCSTEP, -NM_GC_HOLD_KB);
    return 1;
}

static int nm_gcrelease(lua_State *L) {
    nm_Extra *e = extra(L);
    if (!e->gcheld) return 0;
    e->gcheld = 0;
    if (lua_gc(L, LUA_GCISRUNNING, 0)) lua_gc(L, LUA_GCSTEP, NM_GC_HOLD_KB);
    return 0;
}

/* Where a state's blocks come from: malloc, or mimalloc for a fleet (nm_compact_heaps). */
typedef struct nm_BlockAllocator {
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
} nm_BlockAllocator;

static const nm_BlockAllocator nm_system_blocks = { realloc, free };
static nm_BlockAllocator nm_mimalloc_blocks;
static int nm_mimalloc_status;
static pthread_once_t nm_mimalloc_once = PTHREAD_ONCE_INIT;

static void nm_load_mimalloc(void) {
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    nm_mimalloc_status = -1;   /* the sanitizer must see every block */
    return;
#endif
#endif
    /* RTLD_LOCAL: its malloc does not replace the process's; only the blocks of the
       states that ask for it come from it. */
    void *library = dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) return;
    void *grow = dlsym(library, "mi_realloc");
    void *release = dlsym(library, "mi_free");
    if (grow == NULL || release == NULL) {
        dlclose(library);
        return;
    }
    nm_mimalloc_blocks.realloc = (void *(*)(void *, size_t))grow;
    nm_mimalloc_blocks.free = (void (*)(void *))release;
    nm_mimalloc_status = 1;
}

int nm_compact_heaps(void) {
    pthread_once(&nm_mimalloc_once, nm_load_mimalloc);
    return nm_mimalloc_status;
}

/* The device heap: every block the state allocates is counted; once a budget is set
   (nm_heap_setlimit, after the host's own setup) an allocation that would take the
   script's share past it fails, and Lua answers as on the device: an emergency full
   collection, then "not enough memory". While Swift is in control (swift > 0) an
   allocation never fails: a memory error raised there would unwind through Swift
   frames (bridge rule 1); the overdraft is counted and later Lua allocations fail. */
typedef struct nm_Heap {
    const nm_BlockAllocator *blocks;  /* fixed for the state's life */
    size_t used;      /* bytes held by the state now */
    size_t base;      /* `used` when counting started (the host's setup) */
    size_t limit;     /* budget for used - base; 0: unlimited */
    size_t peak;      /* highest used - base since counting started */
    size_t charged;   /* host-side bytes charged to the budget (nm_heap_charge) */
    int counting;
    int swift;        /* Swift is in control: allocations must not fail */
    int host;         /* > 0: the host is building firmware tables (nm_heap_host) */
    void **pinned;    /* Swift boxes of the boot-long functions (nm_pushpinnedfunction) */
    size_t npinned, cappinned;
} nm_Heap;

static size_t nm_heap_share(const nm_Heap *h) {
    size_t total = h->used + h->charged;
    return total > h->base ? total - h->base : 0;
}

static void *nm_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    nm_Heap *h = (nm_Heap *)ud;
    size_t old = ptr != NULL ? osize : 0;
    if (nsize == 0) {
        h->blocks->free(ptr);
        h->used -= old;
        /* A rehash while the host builds a firmware table frees the old part. */
        if (h->host > 0) h->base = h->base > old ? h->base - old : 0;
        return NULL;
    }
    if (h->counting && h->limit > 0 && nsize > old && !h->swift && h->host == 0) {
        size_t after = nm_heap_share(h) + (nsize - old);
        if (after > h->limit) return NULL;
    }
    void *block = h->blocks->realloc(ptr, nsize);
    if (block == NULL) return NULL;
    h->used = h->used - old + nsize;
    /* A firmware table built on first use lives in flash on the device: the growth
       moves the base with it, so the script's share (and its peak) do not change. */
    if (h->host > 0) h->base = h->base + nsize > old ? h->base + nsize - old : 0;
    if (h->counting) {
        size_t share = nm_heap_share(h);
        if (share > h->peak) h->peak = share;
    }
    return block;
}

static nm_Heap *heap(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return (nm_Heap *)ud;
}

void nm_heap_setlimit(lua_State *L, size_t limit) {
    nm_Heap *h = heap(L);
    h->base = h->used + h->charged;
    h->limit = limit;
    h->peak = 0;
    h->counting = 1;
}

nm_HeapStatus nm_heap_status(lua_State *L) {
    nm_Heap *h = heap(L);
    nm_HeapStatus status;
    status.counting = h->counting;
    status.limit = h->limit;
    status.used = h->counting ? nm_heap_share(h) : h->used;
    status.peak = h->peak;
    return status;
}

int nm_heap_charge(lua_State *L, size_t bytes) {
    nm_Heap *h = heap(L);
    if (h->counting && h->limit > 0 && nm_heap_share(h) + bytes > h->limit) return 0;
    h->charged += bytes;
    if (h->counting && nm_heap_share(h) > h->peak) h->peak = nm_heap_share(h);
    return 1;
}

void nm_heap_host(lua_State *L, int on) {
    nm_Heap *h = heap(L);
    h->host += on ? 1 : -1;
}

void nm_heap_credit(lua_State *L, size_t bytes) {
    nm_Heap *h = heap(L);
    h->charged -= bytes < h->charged ? bytes : h->charged;
}

/* As luaL_newstate's: an error outside any protected call ends the process. */
static int nm_panic(lua_State *L) {
    fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n", lua_tostring(L, -1));
    fflush(stderr);
    return 0;
}

lua_State *nm_newstate(int compact) {
    nm_Heap *h = (nm_Heap *)calloc(1, sizeof(nm_Heap));
    if (h == NULL) return NULL;
    h->blocks = compact && nm_compact_heaps() == 1 ? &nm_mimalloc_blocks : &nm_system_blocks;
    h->swift = 1;
    lua_State *L = lua_newstate(nm_alloc, h);
    if (L == NULL) {
        free(h);
        return NULL;
    }
    lua_atpanic(L, nm_panic);
    nm_Extra *e = (nm_Extra *)lua_newuserdata(L, sizeof(nm_Extra));
    /* The extra record lives as long as the state: anchor it in the registry. */
    luaL_ref(L, LUA_REGISTRYINDEX);
    e->gcheld = 0;
    e->errlenset = 0;
    e->errlen = 0;
    e->depth = 0;
    e->tripped = NM_TRIP_NONE;
    e->lasttrip = NM_TRIP_NONE;
    e->wdtimeout = 0;
    e->wddeadline = 0;
    *(nm_Extra **)lua_getextraspace(L) = e;
    lua_sethook(L, nm_hook, LUA_MASKCOUNT, NM_HOOK_INTERVAL);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, nm_boxgc);
    lua_setfield(L, -2, "__gc");
    e->functionmeta = luaL_ref(L, LUA_REGISTRYINDEX);
    /* Swift is in control now: the collector runs only inside nm_pcall. */
    nm_gchold(L);
    return L;
}

void nm_close(lua_State *L) {
    nm_Heap *h = heap(L);
    /* __gc metamethods run now and may call Swift: nothing may fail. */
    h->swift = 1;
    lua_close(L);
    /* The boot-long functions' Swift boxes: no Lua value can reach them any more. */
    for (size_t i = 0; i < h->npinned; i++) nm_release(h->pinned[i]);
    free(h->pinned);
    free(h);
}

static int nm_invoke(lua_State *L, void *function) {
    /* No collection (hence no __gc that could raise) while Swift runs. */
    int held = nm_gchold(L);
    nm_Heap *h = heap(L);
    int swift = h->swift;
    h->swift = 1;
    nm_Status status = nm_dispatch(L, function);
    h->swift = swift;
    if (held) nm_gcrelease(L);
    /* tmr.delay ran into the watchdog (or Ctrl-C): raise now that Swift has returned. */
    if (extra(L)->tripped) nm_hook(L, NULL);
    switch (status.kind) {
    case NM_RETURN:
        return status.value;
    case NM_ERROR:
        return luaL_error(L, "%s", lua_tostring(L, -1));
    case NM_ARGERROR:
        return luaL_argerror(L, status.value, lua_tostring(L, -1));
    default:
        return lua_error(L);
    }
}

static int nm_trampoline(lua_State *L) {
    void **slot = (void **)lua_touserdata(L, lua_upvalueindex(1));
    if (slot == NULL || *slot == NULL) return luaL_error(L, "function of a closed runtime");
    return nm_invoke(L, *slot);
}

/* A boot-long function (module tables, handle metatables): its Swift box is a light
   userdata upvalue, kept by the heap record and released after lua_close, which saves
   the full userdata (and its __gc) that nm_pushfunction gives every other function. */
static int nm_pinnedtrampoline(lua_State *L) {
    return nm_invoke(L, lua_touserdata(L, lua_upvalueindex(1)));
}

void nm_pushpinnedfunction(lua_State *L, void *function) {
    nm_Heap *h = heap(L);
    if (h->npinned == h->cappinned) {
        size_t cap = h->cappinned ? h->cappinned * 2 : 64;
        void **grown = (void **)realloc(h->pinned, cap * sizeof(void *));
        if (grown == NULL) {
            /* Out of C memory: fall back to a collectable box. */
            nm_pushfunction(L, function);
            return;
        }
        h->pinned = grown;
        h->cappinned = cap;
    }
    h->pinned[h->npinned++] = function;
    lua_pushlightuserdata(L, function);
    lua_pushcclosure(L, nm_pinnedtrampoline, 1);
}

void nm_pushfunction(lua_State *L, void *function) {
    void **slot = (void **)lua_newuserdata(L, sizeof(void *));
    *slot = function;
    lua_rawgeti(L, LUA_REGISTRYINDEX, extra(L)->functionmeta);
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, nm_trampoline, 1);
}

void nm_pushobject(lua_State *L, void *object, int metatableRef) {
    void **slot = (void **)lua_newuserdata(L, sizeof(void *));
    *slot = object;
    lua_rawgeti(L, LUA_REGISTRYINDEX, metatableRef);
    lua_setmetatable(L, -2);
}

void *nm_toobject(lua_State *L, int idx, int metatableRef, int *isbox) {
    void **slot = (void **)lua_touserdata(L, idx);
    *isbox = 0;
    if (slot == NULL || lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx)) return NULL;
    lua_rawgeti(L, LUA_REGISTRYINDEX, metatableRef);
    *isbox = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return *isbox ? *slot : NULL;
}

void *nm_takeobject(lua_State *L, int idx) {
    void **slot = (void **)lua_touserdata(L, idx);
    if (slot == NULL) return NULL;
    void *object = *slot;
    *slot = NULL;
    return object;
}

/* Message handler: "<msg>\nstack traceback:\n..." as lua.c prints it. The length
   of "<msg>" is stashed so the caller can print the message alone (PANIC lines). */
static int nm_traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
            msg = lua_tostring(L, -1);
        else
            msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    size_t len = strlen(msg);
    luaL_traceback(L, L, msg, 1);
    /* Threads share the main state's record (their extra space copies the pointer). */
    nm_Extra *e = extra(L);
    e->errlen = len;
    e->errlenset = 1;
    return 1;
}

int nm_pcall(lua_State *L, int nargs, int nresults, size_t *msglen) {
    nm_Extra *ex = extra(L);
    if (ex->depth++ == 0) {
        /* The event loop runs between tasks: that feeds the device's watchdog. */
        ex->tripped = NM_TRIP_NONE;
        atomic_store_explicit(&nm_interrupt_flag, 0, memory_order_relaxed);
        nm_watchdog_feed(L);
    }
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, nm_traceback);
    lua_insert(L, base);
    int status = LUA_OK;
    nm_Heap *h = heap(L);
    int swift = h->swift;
    h->swift = 0;
    int released = extra(L)->gcheld;
    if (released) {
        /* Releasing may run a __gc: protected, so its error becomes this call's. */
        lua_pushcfunction(L, nm_gcrelease);
        status = lua_pcall(L, 0, 0, 0);
    }
    if (status == LUA_OK) {
        status = lua_pcall(L, nargs, nresults, base);
    } else {
        /* As a failed call leaves it: the error in place of the function and arguments. */
        lua_replace(L, base + 1);
        lua_settop(L, base + 1);
    }
    h->swift = swift;
    /* Also when the script restarted a collector it had stopped. */
    nm_gchold(L);
    lua_remove(L, base);
    if (status != LUA_OK && msglen != NULL) {
        nm_Extra *e = extra(L);
        /* No traceback ran (an error in a __gc released above): the whole text. */
        *msglen = e->errlenset ? e->errlen : lua_rawlen(L, -1);
    }
    if (status != LUA_OK) extra(L)->errlenset = 0;
    if (--ex->depth == 0) {
        ex->lasttrip = ex->tripped;
        if (ex->tripped) {
            ex->tripped = NM_TRIP_NONE;
            lua_sethook(L, nm_hook, LUA_MASKCOUNT, NM_HOOK_INTERVAL);
        }
    }
    return status;
}

/* ---- The device watchdog and Ctrl-C ----------------------------------------------

   A count hook looks at the clock every NM_HOOK_INTERVAL VM instructions. Once the
   watchdog has bitten (or SIGINT asked for an interrupt) the hook is set to run at
   every instruction and raises each time, until the outermost nm_pcall has returned:
   a script's own pcall may catch the error, but the next instruction raises it again,
   so no Lua code can keep the device from resetting. C code that loops without
   running Lua (tmr.delay) checks the same deadline itself (nm_watchdog_remaining).

   The watchdog counts the script's time, not the host's: a running script is looked at
   every NM_HOOK_INTERVAL instructions, microseconds apart, so a gap of more than
   NM_WATCHDOG_GAP_NS between two looks is time the thread was off the CPU (a loaded CI
   machine, a stopped process) or blocked in host code (a full stdout pipe). The deadline
   moves by such gaps, so a busy host never resets a device whose code is fine. */

#define NM_WATCHDOG_GAP_NS 10000000ULL

static unsigned long long nm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

/* Nanoseconds until the deadline (0: bitten), after moving it by an off-CPU gap. */
static unsigned long long nm_watchdog_look(nm_Extra *e) {
    unsigned long long now = nm_now();
    unsigned long long gap = now - e->wdchecked;
    if (gap > NM_WATCHDOG_GAP_NS) e->wddeadline += gap - NM_WATCHDOG_GAP_NS;
    e->wdchecked = now;
    return now >= e->wddeadline ? 0 : e->wddeadline - now;
}

void nm_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    nm_Extra *e = extra(L);
    if (e->depth == 0) return;
    if (!e->tripped) {
        if (atomic_load_explicit(&nm_interrupt_flag, memory_order_relaxed)
            && atomic_exchange_explicit(&nm_interrupt_flag, 0, memory_order_relaxed)) {
            e->tripped = NM_TRIP_INTERRUPT;
        } else if (e->wdtimeout != 0 && nm_watchdog_look(e) == 0) {
            e->tripped = NM_TRIP_WATCHDOG;
        } else {
            return;
        }
        lua_sethook(L, nm_hook, LUA_MASKCOUNT, 1);
        /* In a coroutine: the threads that resumed it raise too (at their next hook). */
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
        lua_State *main = lua_tothread(L, -1);
        lua_pop(L, 1);
        if (main != NULL && main != L) lua_sethook(main, nm_hook, LUA_MASKCOUNT, 1);
    }
    lua_pushstring(L, e->tripped == NM_TRIP_WATCHDOG ? "watchdog reset" : "interrupted!");
    lua_error(L);
}

void nm_watchdog_set(lua_State *L, unsigned long long timeout_ns) {
    extra(L)->wdtimeout = timeout_ns;
    nm_watchdog_feed(L);
}

void nm_watchdog_feed(lua_State *L) {
    nm_Extra *e = extra(L);
    if (e->wdtimeout == 0) return;
    e->wdchecked = nm_now();
    e->wddeadline = e->wdchecked + e->wdtimeout;
}

long long nm_watchdog_remaining(lua_State *L) {
    nm_Extra *e = extra(L);
    if (e->wdtimeout == 0 || e->depth == 0) return -1;
    return (long long)nm_watchdog_look(e);
}

void nm_watchdog_spent(lua_State *L) { extra(L)->wdchecked = nm_now(); }

void nm_watchdog_charge(lua_State *L, unsigned long long ns) {
    nm_Extra *e = extra(L);
    if (e->wdtimeout == 0 || e->depth == 0) return;
    nm_watchdog_look(e);
    e->wddeadline = ns >= e->wddeadline ? 0 : e->wddeadline - ns;
}

void nm_trip(lua_State *L, int kind) {
    nm_Extra *e = extra(L);
    if (e->depth == 0 || e->tripped) return;
    e->tripped = kind;
    lua_sethook(L, nm_hook, LUA_MASKCOUNT, 1);
}

int nm_lasttrip(lua_State *L) {
    nm_Extra *e = extra(L);
    int trip = e->lasttrip;
    e->lasttrip = NM_TRIP_NONE;
    return trip;
}

void nm_request_interrupt(void) { atomic_store_explicit(&nm_interrupt_flag, 1, memory_order_relaxed); }

int nm_interrupt_pending(void) { return atomic_load_explicit(&nm_interrupt_flag, memory_order_relaxed) != 0; }

int nm_load(lua_State *L, const char *buf, size_t len, const char *chunkname) {
    /* Protected: a chunk too large for the budget fails to load ("not enough memory"). */
    nm_Heap *h = heap(L);
    int swift = h->swift;
    h->swift = 0;
    int status = nm_checkedload(L, buf, len, chunkname, "bt");
    h->swift = swift;
    return status;
}

