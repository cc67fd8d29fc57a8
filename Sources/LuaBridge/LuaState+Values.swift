import CLua
import CLuaShim

/// Value helpers the data modules (sjson, file, struct) need: raw table writes with
/// any key, metatables, light userdata and number subtypes. None of them runs Lua code.
extension LuaState {
    /// Pushes the light userdata NULL (sjson's `null`).
    public func pushLightNull() { lua_pushlightuserdata(L, nil) }

    /// Whether the value is a number with the integer subtype.
    public func isInteger(_ index: Int32) -> Bool { lua_isinteger(L, index) != 0 }

    /// `t[key] = value` for the table at `table`, key at -2 and value at -1 (both popped). Raw.
    public func rawSet(in table: Int32) { lua_rawset(L, table) }

    /// Pushes `t[key]` for the table at `table`, the key on top (replaced). Raw.
    @discardableResult
    public func rawGet(in table: Int32) -> LuaType { LuaType(rawValue: lua_rawget(L, table)) ?? .none }

    /// Pops a table (or nil) and makes it the metatable of the value at `index`.
    public func setMetatable(at index: Int32) { lua_setmetatable(L, index) }

    /// Raw equality of two values (no metamethods).
    public func rawEqual(_ first: Int32, _ second: Int32) -> Bool { lua_rawequal(L, first, second) != 0 }

    /// `lua_next` on the table at `table` (the previous key on top is replaced by the
    /// next key and its value); false at the end (the key is popped).
    public func next(in table: Int32) -> Bool { lua_next(L, table) != 0 }

    /// The value as Lua's `tonumber` of a string sees it (`lua_stringtonumber`): pushes
    /// the number and returns true, or pushes nothing and returns false.
    public func pushNumber(parsing text: [UInt8]) -> Bool {
        var text = text
        text.append(0)
        return text.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { lua_stringtonumber(L, $0.baseAddress) != 0 }
        }
    }
}
