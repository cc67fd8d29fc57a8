import LuaBridge

/// A piece of Lua the host runs at the top level: a `-e` chunk or the script.
public struct Chunk: Sendable {
    /// Lua chunk name: "@init.lua" for a file, "=(command line)" for `-e`.
    public var name: String
    public var code: [UInt8]

    public init(name: String, code: [UInt8]) {
        self.name = name
        // lua.c skips a first line starting with '#' (a shebang); keep the
        // newline so line numbers stay right.
        if code.first == UInt8(ascii: "#") {
            let end = code.firstIndex(of: UInt8(ascii: "\n")) ?? code.endIndex
            self.code = Array(code[end...])
        } else {
            self.code = code
        }
    }
}

extension Runtime {
    /// Sets the global `arg` as `lua.c` does: `arg[0]` the script, `arg[1…]` its
    /// arguments, `arg[-1]` the interpreter.
    public func setScriptArguments(script: String, arguments: [String]) {
        lua.newTable(arrayCapacity: Int32(arguments.count), fieldCapacity: 2)
        lua.push("nodemcu-host")
        lua.rawSet(-1, in: -2)
        lua.push(script)
        lua.rawSet(0, in: -2)
        for (i, argument) in arguments.enumerated() {
            lua.push(argument)
            lua.rawSet(i + 1, in: -2)
        }
        lua.setGlobal("arg")
    }

    /// Loads and runs a top-level chunk with `arguments` as `...`. A load error is
    /// a host diagnostic; a run error is printed as the device prints it. Both then
    /// go through `--on-error`. Returns false on error.
    @discardableResult
    public func run(_ chunk: Chunk, arguments: [String] = []) -> Bool {
        guard !halted else { return false }
        if let message = lua.load(chunk.code, chunkName: chunk.name) {
            diagnostic(message)
            emit(.error(message: message))
            applyErrorPolicy()
            return false
        }
        for argument in arguments { lua.push(argument) }
        return protectedCall(arguments: Int32(arguments.count)) { reportTopLevelError($0, repl: false) }
    }
}
