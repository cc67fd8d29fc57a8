/// The firmware's argument checks, as non-raising readers (spec §1.2). Indexes
/// are stack positions: in a method call index 2 is reported as argument #1.
extension LuaState {
    /// The text of a type error: "<expected> expected, got <type>".
    public func typeError(_ index: Int32, expected: String) -> LuaError {
        .argument(index, "\(expected) expected, got \(typeName(at: index))")
    }

    /// `luaL_checkinteger` as on the 5.1 device: number-like, floats truncated.
    public func checkInteger(_ index: Int32) throws(LuaError) -> Int {
        guard let value = integer(at: index) else { throw typeError(index, expected: "number") }
        return value
    }

    /// `luaL_optinteger`: nil or absent gives `defaultValue`.
    public func optionalInteger(_ index: Int32, default defaultValue: Int) throws(LuaError) -> Int {
        isNoneOrNil(index) ? defaultValue : try checkInteger(index)
    }

    /// `luaL_checklstring`: string-like (numbers are converted).
    public func checkBytes(_ index: Int32) throws(LuaError) -> [UInt8] {
        guard let value = bytes(at: index) else { throw typeError(index, expected: "string") }
        return value
    }

    public func checkString(_ index: Int32) throws(LuaError) -> String {
        guard let value = string(at: index) else { throw typeError(index, expected: "string") }
        return value
    }
}
