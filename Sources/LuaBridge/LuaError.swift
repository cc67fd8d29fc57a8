/// How a Lua-callable Swift body fails. It never raises itself: the C trampoline
/// turns this into a Lua error after the Swift frames have returned (bridge rule 1).
public enum LuaError: Error, Sendable {
    /// As luaL_argerror with `index` and `message`: "bad argument #index to 'name' (message)";
    /// in a method call the index does not count `self`, and index 1 of a method
    /// becomes "calling 'name' on bad self (message)".
    case argument(Int32, String)
    /// As luaL_error: the message prefixed with the caller's "chunk:line: ".
    case message(String)
    /// Raise the value on top of the stack unchanged.
    case raiseTop
}
