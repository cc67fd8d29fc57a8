import LuaBridge

/// `node.output` and `node.input` (more-modules §1.3).
extension NodeModule {
    func registerOutput(in table: inout LuaModuleTable) {
        table.function("output") { [unowned self] lua throws(LuaError) in try output(lua) }
        table.function("input") { [unowned self] lua throws(LuaError) in try input(lua) }
    }

    // MARK: node.output

    /// Lua: node.output(fn[, serial_debug]) — console writes (print, REPL results, error
    /// reports) go to `fn`; `serial_debug` 0 stops the copy on the serial port. Without
    /// a function, output returns to the serial port. 2.2 calls `fn(str)` once per write,
    /// synchronously; 3.0 appends each write to a pipe whose medium-priority reader task
    /// calls `fn(pipe)`. `uart.write` bypasses it.
    private func output(_ lua: LuaState) throws(LuaError) -> Int32 {
        resetOutput(on: lua)
        guard lua.isFunction(1) else {
            setPrintPieces(false, on: lua)
            return 0
        }
        serialCopy = !(lua.type(at: 2) == .number && lua.integer(at: 2) == 0)
        if profile == .v2_2 {
            outputFunction = lua.ref(at: 1)
            runtime.consoleRedirect = { [unowned self] bytes in redirect22(bytes) }
            setPrintPieces(true, on: lua)
        } else {
            guard let pipes = runtime.modules[PipeModule.self] else { return 0 }
            let pipe = pipes.makePipe(readerAt: 1, priority: .medium, on: lua)
            outputPipe = pipe
            outputPipeRef = lua.ref()
            runtime.consoleRedirect = { [unowned self] bytes in redirect30(bytes) }
        }
        return 0
    }

    private func resetOutput(on lua: LuaState) {
        if let outputFunction { lua.unref(outputFunction) }
        if let outputPipeRef { lua.unref(outputPipeRef) }
        outputFunction = nil
        outputPipeRef = nil
        outputPipe = nil
        serialCopy = true
        runtime.consoleRedirect = nil
    }

    /// 2.2's print writes piece by piece while an output function is set.
    private func setPrintPieces(_ on: Bool, on lua: LuaState) {
        guard let host = runtime.preludeHost else { return }
        lua.push(host)
        lua.push(on)
        lua.setField("pieces", in: -2)
        lua.pop()
    }

    /// 2.2: `fn(str)` now, the string cut at a NUL. An error goes to the Lua code that
    /// printed (raised by the write primitive after this returns); for the host's own
    /// writes (error reports, REPL results) it is a PANIC, as an unprotected call is.
    private func redirect22(_ bytes: UnsafeRawBufferPointer) {
        if serialCopy { runtime.serialWrite(bytes) }
        guard let outputFunction, !redirecting else { return }
        redirecting = true
        defer { redirecting = false }
        let lua = runtime.lua
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        lua.push(outputFunction)
        lua.push(UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
        if case .error(let error) = lua.pcall(arguments: 1, results: 0) {
            if runtime.luaWriteDepth > 0 {
                runtime.outputError = error
            } else {
                var line = "PANIC: unprotected error in call to Lua API (\(error.message))\n"
                line.withUTF8 { runtime.serialWrite(UnsafeRawBufferPointer($0)) }
                runtime.applyErrorPolicy()
            }
        }
    }

    /// 3.0: appended to the output pipe; its reader task drains it later.
    private func redirect30(_ bytes: UnsafeRawBufferPointer) {
        if serialCopy { runtime.serialWrite(bytes) }
        outputPipe?.write(Array(bytes.bindMemory(to: UInt8.self)))
    }

    // MARK: node.input

    /// Lua: node.input(str) — console input for the interpreter, run by a low-priority
    /// task after the current code returns, with the REPL's rules (`=expr`, continuation
    /// lines, results printed), then the next prompt (`> ` or `>> `) written to the
    /// console, where `node.output` sees it, as the firmware's `dojob` does. 2.2: `str` is
    /// one line; ignored when empty, 256 bytes or longer, while an earlier line waits
    /// for its task, or while the interpreter runs a console line (the firmware's
    /// `line_position` check: a call made from the console itself does nothing). A
    /// half-entered chunk continues with the next line. 3.0: appended to the
    /// interpreter's input; each task runs one newline-terminated line, text without a
    /// newline waits. An error in such a line is printed (to the console, so through
    /// `node.output`) and the device goes on, whatever `--on-error` says.
    private func input(_ lua: LuaState) throws(LuaError) -> Int32 {
        let text = try lua.checkBytes(1)
        if profile == .v2_2 {
            guard !text.isEmpty, text.count < 256, !inputLinePending, !runtime.console.repl.isExecuting else {
                return 0
            }
            inputLinePending = true
            runtime.tasks.post(.low) { [unowned self] in
                var line = text
                if line.last == UInt8(ascii: "\n") { line.removeLast() }
                let prompt = runtime.console.repl.feed(String(decoding: line, as: UTF8.self), errorsApplyPolicy: false)
                inputLinePending = false
                writePrompt(prompt)
            }
            return 0
        }
        inputPipe += text
        for _ in 0..<text.filter({ $0 == UInt8(ascii: "\n") }).count {
            runtime.tasks.post(.low) { [unowned self] in runInputLine() }
        }
        return 0
    }

    private func runInputLine() {
        guard let end = inputPipe.firstIndex(of: UInt8(ascii: "\n")) else { return }
        var line = Array(inputPipe[..<end])
        inputPipe.removeSubrange(...end)
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        writePrompt(runtime.console.repl.feed(String(decoding: line, as: UTF8.self), errorsApplyPolicy: false))
    }

    /// The prompt after a `node.input` line, a console write like the line's output.
    private func writePrompt(_ prompt: ReplSession.Prompt) {
        guard !runtime.halted else { return }
        var text = prompt.text
        text.withUTF8 { runtime.consoleWrite(UnsafeRawBufferPointer($0)) }
    }
}
