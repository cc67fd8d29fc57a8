import CLua
import CLuaShim

/// A non-owning view of a `lua_State` for use on the event-loop thread.
///
/// Only API functions that cannot raise are called here (bridge rule 2). Allocating
/// pushes are safe because the collector never runs while Swift is in control
/// (see `nm_pcall` / `nm_trampoline`), so no `__gc` can raise under a Swift frame.
public struct LuaState {
    public let L: OpaquePointer

    public init(_ L: OpaquePointer) { self.L = L }

    // MARK: Stack

    public var top: Int32 {
        get { lua_gettop(L) }
        nonmutating set { lua_settop(L, newValue) }
    }

    public func pop(_ n: Int32 = 1) { nm_pop(L, n) }
    /// Makes room for `extra` more values: Lua guarantees a C function only LUA_MINSTACK
    /// (20) free slots, and pushing past them corrupts the heap. False if the stack cannot grow.
    public func checkStack(_ extra: Int32) -> Bool { lua_checkstack(L, extra) != 0 }
    public func absolute(_ index: Int32) -> Int32 { lua_absindex(L, index) }
    /// The identity of the table, userdata, function or thread at `index` (nil otherwise).
    public func pointer(at index: Int32) -> UnsafeRawPointer? { lua_topointer(L, index) }
    public func pushValue(at index: Int32) { lua_pushvalue(L, index) }
    public func remove(at index: Int32) { nm_remove(L, index) }
    public func insert(at index: Int32) { nm_insert(L, index) }

    // MARK: Types

    public func type(at index: Int32) -> LuaType { LuaType(rawValue: lua_type(L, index)) ?? .none }
    public func typeName(at index: Int32) -> String { type(at: index).name }
    public func isNoneOrNil(_ index: Int32) -> Bool { lua_type(L, index) <= 0 }
    public func isFunction(_ index: Int32) -> Bool { lua_type(L, index) == LUA_TFUNCTION }

    // MARK: Reading (never raises)

    /// The value as a number if it is number-like (a number or a convertible string).
    public func number(at index: Int32) -> Double? {
        var ok: Int32 = 0
        let value = nm_tonumber(L, index, &ok)
        return ok != 0 ? value : nil
    }

    /// The value as an integer if it is number-like; floats truncate toward zero,
    /// as on the 5.1 device (never "number has no integer representation").
    public func integer(at index: Int32) -> Int? {
        var ok: Int32 = 0
        if lua_type(L, index) == LUA_TNUMBER {
            let i = lua_tointegerx(L, index, &ok)
            if ok != 0 { return Int(i) }
        }
        guard let d = number(at: index) else { return nil }
        return LuaState.truncate(d)
    }

    static func truncate(_ d: Double) -> Int {
        if d.isNaN { return 0 }
        if d >= 9.2e18 { return Int.max }
        if d <= -9.2e18 { return Int.min }
        return Int(d.rounded(.towardZero))
    }

    public func boolean(at index: Int32) -> Bool { lua_toboolean(L, index) != 0 }

    /// True for a string or a number (the firmware's "string-like").
    public func isStringLike(_ index: Int32) -> Bool {
        let t = lua_type(L, index)
        return t == LUA_TSTRING || t == LUA_TNUMBER
    }

    /// Calls `body` with the bytes of a string-like value without copying them.
    /// A number is converted in place, as `lua_tolstring` does.
    public func withBytes<R>(at index: Int32, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        guard isStringLike(index) else { return nil }
        var length = 0
        guard let pointer = lua_tolstring(L, index, &length) else { return nil }
        return try body(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// Calls `body` with the bytes of two string-like values at once (nil unless both
    /// are string-like): one call where a hot path needs two arguments.
    public func withBytes<R>(
        at first: Int32, _ second: Int32, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> R
    ) rethrows -> R? {
        guard isStringLike(first), isStringLike(second) else { return nil }
        var firstLength = 0
        var secondLength = 0
        guard let firstPointer = lua_tolstring(L, first, &firstLength),
              let secondPointer = lua_tolstring(L, second, &secondLength) else { return nil }
        return try body(UnsafeRawBufferPointer(start: firstPointer, count: firstLength),
                        UnsafeRawBufferPointer(start: secondPointer, count: secondLength))
    }

    /// The bytes of a string-like value (Lua strings are bytes, never `String`).
    public func bytes(at index: Int32) -> [UInt8]? {
        withBytes(at: index) { Array($0.bindMemory(to: UInt8.self)) }
    }

    /// A string-like value decoded as UTF-8 (invalid sequences repaired): for names
    /// and messages, never for payloads.
    public func string(at index: Int32) -> String? {
        withBytes(at: index) { String(decoding: $0, as: UTF8.self) }
    }

    // MARK: Pushing (allocating calls go last in a body, bridge rule 2)

    public func pushNil() { lua_pushnil(L) }
    public func push(_ value: Bool) { lua_pushboolean(L, value ? 1 : 0) }
    public func push(_ value: Int) { lua_pushinteger(L, lua_Integer(value)) }
    public func push(_ value: Double) { lua_pushnumber(L, value) }
    public func push(_ value: String) {
        var value = value
        value.withUTF8 { push(UnsafeRawBufferPointer($0)) }
    }
    public func push(_ bytes: UnsafeRawBufferPointer) {
        _ = lua_pushlstring(L, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
    }
    public func push(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { push($0) }
    }
    public func newTable(arrayCapacity: Int32 = 0, fieldCapacity: Int32 = 0) {
        lua_createtable(L, arrayCapacity, fieldCapacity)
    }

    /// Pushes a function that runs `body` through the trampoline.
    public func push(function body: @escaping LuaFunction.Body) {
        nm_pushfunction(L, Unmanaged.passRetained(LuaFunction(body)).toOpaque())
    }

    /// Pushes a function that lives as long as the state (a module table's function, a
    /// handle type's method): its Swift body is kept until the state closes, without the
    /// userdata box (and `__gc`) that `push(function:)` gives each function, which a
    /// module table would otherwise pay for every one of its functions.
    public func push(pinnedFunction body: @escaping LuaFunction.Body) {
        nm_pushpinnedfunction(L, Unmanaged.passRetained(LuaFunction(body)).toOpaque())
    }

    // MARK: Tables (raw access only: no metamethods can run)

    /// `t[key] = value on top` (pops the value) for the table at `table`.
    public func setField(_ key: String, in table: Int32) {
        let table = absolute(table)
        push(key)
        insert(at: -2)
        lua_rawset(L, table)
    }

    public func getField(_ key: String, in table: Int32) -> LuaType {
        let table = absolute(table)
        push(key)
        return LuaType(rawValue: lua_rawget(L, table)) ?? .none
    }

    public func rawGet(_ index: Int32, in table: Int32) -> LuaType {
        LuaType(rawValue: lua_rawgeti(L, table, lua_Integer(index))) ?? .none
    }

    public func rawSet(_ index: Int, in table: Int32) {
        lua_rawseti(L, table, lua_Integer(index))
    }

    /// Iterates a table with `lua_next` (raw); the body sees key at -2, value at -1
    /// and must leave the stack as it found it. Return false to stop.
    public func forEach(in table: Int32, _ body: () throws -> Bool) rethrows {
        let table = absolute(table)
        pushNil()
        while lua_next(L, table) != 0 {
            let keepGoing = try body()
            pop()
            if !keepGoing { pop(); return }
        }
    }

    public func rawLength(at index: Int32) -> Int { Int(lua_rawlen(L, index)) }

    public func setGlobal(_ name: String) {
        nm_pushglobaltable(L)
        insert(at: -2)
        setField(name, in: -2)
        pop()
    }

    public func getGlobal(_ name: String) -> LuaType {
        nm_pushglobaltable(L)
        let t = getField(name, in: -1)
        remove(at: -2)
        return t
    }

    // MARK: Registry references

    /// Pops the top value and keeps it in the registry.
    public func ref() -> LuaRef { LuaRef(luaL_ref(L, nm_registryindex())) }
    public func ref(at index: Int32) -> LuaRef {
        pushValue(at: index)
        return ref()
    }
    public func unref(_ ref: LuaRef) { luaL_unref(L, nm_registryindex(), ref.value) }
    @discardableResult
    public func push(_ ref: LuaRef) -> LuaType {
        LuaType(rawValue: lua_rawgeti(L, nm_registryindex(), lua_Integer(ref.value))) ?? .none
    }

    // MARK: Calls

    /// Calls the function below `arguments` values in protected mode.
    public func pcall(arguments: Int32, results: Int32) -> LuaCallResult {
        var messageLength = 0
        let status = nm_pcall(L, arguments, results, &messageLength)
        if status == LUA_OK {
            // A coroutine that the watchdog ended inside a call that then returned.
            let trip = LuaTrip(rawValue: nm_lasttrip(L)) ?? .none
            guard trip != .none else { return .ok }
            let text = trip == .watchdog ? "watchdog reset" : "interrupted!"
            return .error(LuaCallError(message: text, traceback: text, trip: trip))
        }
        let traceback = string(at: -1) ?? "?"
        pop()
        let utf8 = Array(traceback.utf8)
        let message = String(decoding: utf8.prefix(min(messageLength, utf8.count)), as: UTF8.self)
        return .error(LuaCallError(
            message: message, traceback: traceback, trip: LuaTrip(rawValue: nm_lasttrip(L)) ?? .none))
    }

    /// The device watchdog (see `nm_watchdog_set`): nil turns it off.
    public func setWatchdog(timeout: Int64?) {
        nm_watchdog_set(L, UInt64(max(0, timeout ?? 0)))
    }

    /// `tmr.wdclr()`: feeds the watchdog.
    public func feedWatchdog() { nm_watchdog_feed(L) }

    /// Nanoseconds until the watchdog bites (nil: off, or no Lua running).
    public var watchdogRemaining: Int64? {
        let remaining = nm_watchdog_remaining(L)
        return remaining < 0 ? nil : remaining
    }

    /// From a Swift body that has kept the thread busy for the script (`tmr.delay`'s spin):
    /// that time counts against the watchdog, however long (not an off-CPU gap).
    public func watchdogSpent() { nm_watchdog_spent(L) }

    /// From a Swift body that simulated device time without spending it (a virtual
    /// `tmr.delay`, a synchronous `gpio.serout`): that time counts against the watchdog.
    public func chargeWatchdog(nanoseconds: Int64) { nm_watchdog_charge(L, UInt64(max(0, nanoseconds))) }

    /// From a Swift body that loops without running Lua (`tmr.delay`): ends the running
    /// Lua as the watchdog or an interrupt would, once the body has returned.
    public func trip(_ kind: LuaTrip) { nm_trip(L, kind.rawValue) }

    /// Asks the running Lua to stop (Ctrl-C); async-signal-safe.
    public static func requestInterrupt() { nm_request_interrupt() }
    /// Whether Ctrl-C is pending.
    public static var interruptPending: Bool { nm_interrupt_pending() != 0 }

    /// Loads a chunk without running it; on failure returns the message.
    public func load(_ code: UnsafeRawBufferPointer, chunkName: String) -> String? {
        let status = nm_load(L, code.baseAddress?.assumingMemoryBound(to: CChar.self), code.count, chunkName)
        if status == LUA_OK { return nil }
        let message = string(at: -1) ?? "?"
        pop()
        return message
    }

    public func load(_ code: [UInt8], chunkName: String) -> String? {
        code.withUnsafeBytes { load($0, chunkName: chunkName) }
    }
}

/// A value kept in the Lua registry (callbacks, self references).
public struct LuaRef: Hashable, Sendable {
    public let value: Int32
    public init(_ value: Int32) { self.value = value }
    public static let none = LuaRef(LUA_NOREF)
}

/// An error from a protected call: the message alone and with its traceback.
public struct LuaCallError: Error, Sendable {
    public var message: String
    public var traceback: String
    /// Set when the watchdog or an interrupt ended the call rather than an error.
    public var trip: LuaTrip = .none

    public init(message: String, traceback: String, trip: LuaTrip = .none) {
        self.message = message
        self.traceback = traceback
        self.trip = trip
    }
}

/// What ended a protected call besides an ordinary error.
public enum LuaTrip: Int32, Sendable {
    case none = 0
    /// The device watchdog: Lua ran too long without returning to the event loop.
    case watchdog = 1
    /// Ctrl-C (SIGINT) in the REPL.
    case interrupt = 2
}

public enum LuaCallResult: Sendable {
    case ok
    case error(LuaCallError)
}
