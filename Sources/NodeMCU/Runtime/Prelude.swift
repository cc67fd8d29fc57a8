import EmbeddedLua
import LuaBridge

/// Installs the compatibility prelude (`lua/runtime/prelude.lua`, embedded in the
/// binary) and the console primitive behind `print`.
enum Prelude {
    /// The prelude as bytecode without debug information (line numbers, local and
    /// upvalue names), compiled once per process: every boot's state keeps the prelude's
    /// functions for good, and the debug information was a quarter of them (3.4 of 13.5
    /// KB per device). Errors raised inside a prelude function say `prelude:?:` instead
    /// of a line (the device's versions of these functions are C and name no line
    /// either); errors it reports for a caller (`error(text, 2)`) are unchanged. Nil if
    /// the compile fails, and each boot loads the text.
    static let strippedPrelude: [UInt8]? = {
        let vm = LuaVM()
        defer { vm.close() }
        vm.openStandardLibraries()
        let lua = vm.state
        let dump: [UInt8] = Array(#"local src = ...; return string.dump(assert(load(src, "=prelude")), true)"#.utf8)
        guard lua.load(dump, chunkName: "=dump") == nil else { return nil }
        lua.push(EmbeddedLua.prelude)
        guard case .ok = lua.pcall(arguments: 1, results: 1) else { return nil }
        defer { lua.pop() }
        return lua.bytes(at: -1)
    }()

    static func install(in runtime: Runtime) {
        let lua = runtime.lua
        if let message = lua.load(strippedPrelude ?? EmbeddedLua.prelude, chunkName: "=prelude") {
            fatalError("nodemcu-host: the embedded prelude does not load: \(message)")
        }
        lua.newTable()
        lua.push(function: { lua throws(LuaError) in
            runtime.luaWriteDepth += 1
            lua.withBytes(at: 1) { runtime.consoleWrite($0) }
            runtime.luaWriteDepth -= 1
            // 2.2's node.output function failed: its error goes to the code that printed.
            if let error = runtime.takeOutputError() {
                lua.push(error.message)
                throw .raiseTop
            }
            return 0
        })
        lua.setField("write", in: -2)
        runtime.preludeHost = lua.ref(at: -1)
        if case .error(let error) = lua.pcall(arguments: 1, results: 0) {
            fatalError("nodemcu-host: the embedded prelude failed: \(error.traceback)")
        }
        // Device scripts and their modules live in one flat folder (--fs, the current
        // directory). The firmware's LUA_PATH_DEFAULT in both profiles: bytecode first,
        // and no "./", so `require`d chunks are named "@mod.lua" as on the device (NTest
        // strips directories from error texts and would lose the rest of a traceback).
        _ = lua.getGlobal("package")
        lua.push("?.lc;?.lua")
        lua.setField("path", in: -2)
        lua.push("")
        lua.setField("cpath", in: -2)
        lua.pop()
    }
}
