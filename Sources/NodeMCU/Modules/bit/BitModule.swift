import LuaBridge

/// Lua: the `bit` module (behaviour spec §5.6, more-modules §15), both profiles.
///
/// Follows the firmware's app/modules/bit.c: every argument is read as an integer
/// (number-like, floats truncated) and reduced to its low 32 bits, so `0xFFFFFFFF` is
/// −1 and 2³² is 0; every result is a signed 32-bit integer (`bit.bnot(0) == -1`,
/// `bit.lshift(1, 31) == -2147483648`). Shift counts and bit positions use their low
/// five bits, as the ESP8266's variable shift instructions do (counts of 32 or more are
/// unconfirmed on hardware).
public final class BitModule: LuaModule {
    public static let name = "bit"

    public init(runtime: Runtime) {}

    public func register(in table: inout LuaModuleTable) {
        table.function("bnot") { lua throws(LuaError) in try Self.bnot(lua) }
        table.function("band") { lua throws(LuaError) in try Self.fold(lua, &) }
        table.function("bor") { lua throws(LuaError) in try Self.fold(lua, |) }
        table.function("bxor") { lua throws(LuaError) in try Self.fold(lua, ^) }
        table.function("lshift") { lua throws(LuaError) in try Self.shift(lua) { $0 << $1 } }
        table.function("rshift") { lua throws(LuaError) in try Self.shift(lua) { Int32(bitPattern: UInt32(bitPattern: $0) >> $1) } }
        table.function("arshift") { lua throws(LuaError) in try Self.shift(lua) { $0 >> $1 } }
        table.function("bit") { lua throws(LuaError) in try Self.bit(lua) }
        table.function("set") { lua throws(LuaError) in try Self.update(lua) { $0 | $1 } }
        table.function("clear") { lua throws(LuaError) in try Self.update(lua) { $0 & ~$1 } }
        table.function("isset") { lua throws(LuaError) in try Self.test(lua, set: true) }
        table.function("isclear") { lua throws(LuaError) in try Self.test(lua, set: false) }
    }

    /// An argument as the firmware's 32-bit integer.
    private static func word(_ lua: LuaState, _ index: Int32) throws(LuaError) -> Int32 {
        Int32(truncatingIfNeeded: try lua.checkInteger(index))
    }

    /// A shift count or bit position: its low five bits.
    private static func position(_ lua: LuaState, _ index: Int32) throws(LuaError) -> Int32 {
        try word(lua, index) & 31
    }

    private static func push(_ value: Int32, on lua: LuaState) -> Int32 {
        lua.push(Int(value))
        return 1
    }

    /// Lua: bit.bnot(value)
    private static func bnot(_ lua: LuaState) throws(LuaError) -> Int32 {
        push(~(try word(lua, 1)), on: lua)
    }

    /// Lua: bit.band(val1, val2[, …valn]), bit.bor(…), bit.bxor(…)
    private static func fold(_ lua: LuaState, _ operation: (Int32, Int32) -> Int32) throws(LuaError) -> Int32 {
        var result = try word(lua, 1)
        var index: Int32 = 2
        while index <= lua.top {
            result = operation(result, try word(lua, index))
            index += 1
        }
        return push(result, on: lua)
    }

    /// Lua: bit.lshift(value, shift), bit.rshift(value, shift), bit.arshift(value, shift)
    private static func shift(_ lua: LuaState, _ operation: (Int32, Int32) -> Int32) throws(LuaError) -> Int32 {
        let value = try word(lua, 1)
        return push(operation(value, try position(lua, 2)), on: lua)
    }

    /// Lua: bit.bit(position) — `1 << position`.
    private static func bit(_ lua: LuaState) throws(LuaError) -> Int32 {
        push(1 << (try position(lua, 1)), on: lua)
    }

    /// Lua: bit.set(value, pos1[, …posn]), bit.clear(value, pos1[, …posn])
    private static func update(_ lua: LuaState, _ operation: (Int32, Int32) -> Int32) throws(LuaError) -> Int32 {
        var result = try word(lua, 1)
        var index: Int32 = 2
        while index <= lua.top {
            result = operation(result, 1 << (try position(lua, index)))
            index += 1
        }
        return push(result, on: lua)
    }

    /// Lua: bit.isset(value, position), bit.isclear(value, position)
    private static func test(_ lua: LuaState, set: Bool) throws(LuaError) -> Int32 {
        let value = try word(lua, 1)
        let isSet = value & (1 << (try position(lua, 2))) != 0
        lua.push(isSet == set)
        return 1
    }
}
