/// Building module and method tables: the table is on top of the stack.
extension LuaState {
    /// Sets `name` in the table on top to a Swift function.
    public func setFunction(_ name: String, _ body: @escaping LuaFunction.Body) {
        push(function: body)
        setField(name, in: -2)
    }

    /// Sets `name` in the table on top to an integer.
    public func setInteger(_ name: String, _ value: Int) {
        push(value)
        setField(name, in: -2)
    }
}
