import LuaBridge

extension Runtime {
    /// Fleet mode: `os.exit([code])` ends this device only (with `code`: true or none 0,
    /// false 1, a number itself) instead of the whole process. Call after `start` has
    /// prepared the interpreter, from the boot body (so it holds after every reboot).
    public func installDeviceExit() {
        _ = lua.getGlobal("os")
        guard lua.type(at: -1) == .table else { lua.pop(); return }
        // Lives as long as this boot's state: no collectable box (fleet memory).
        lua.push(pinnedFunction: { [unowned self] lua throws(LuaError) in
            let status: Int32
            switch lua.type(at: 1) {
            case .boolean: status = lua.boolean(at: 1) ? 0 : 1
            case .number: status = Int32(truncatingIfNeeded: lua.integer(at: 1) ?? Int(lua.number(at: 1) ?? 1))
            default: status = 0
            }
            finish(status: status)
            // Unwind the running Lua; the error is not reported once the run is finished.
            lua.push("os.exit")
            throw .raiseTop
        })
        lua.setField("exit", in: -2)
        lua.pop()
    }
}
