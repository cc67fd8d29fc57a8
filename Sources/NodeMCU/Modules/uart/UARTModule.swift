import LuaBridge

/// Lua: the `uart` module, both profiles (more-modules §5), after the firmware's
/// app/modules/uart.c and docs/modules/uart.md.
///
/// UART 0 is the console: its transmit side is stdout (`uart.write(0, …)` bypasses
/// `node.output`), its receive side standard input (`ConsoleInput`). `uart.on("data",
/// fn)` takes standard input from the interpreter as on the device: with `run_input`
/// on, each line goes to `fn` and then to the interpreter; off, the raw bytes go to
/// `fn` only, in the chunks the size or end character asks for. A registered data
/// callback keeps the process alive until standard input ends. UART 1 only transmits;
/// its output is recorded, not printed. `setup`'s echo flag is stored and ignored.
public final class UARTModule: LuaModule {
    public static let name = "uart"

    struct Config {
        var baud = 115_200
        var databits = 8
        var parity = 0
        var stopbits = 1
    }

    static let bauds = [300, 600, 1200, 2400, 4800, 9600, 19200, 31250, 38400, 57600, 74880,
                        115200, 230400, 256000, 460800, 921600, 1843200, 3686400]

    unowned let runtime: Runtime
    var profile: FirmwareProfile { runtime.profile }
    private var configs = [Config(), Config()]
    private var alternatePins = false
    private var echo = true
    /// What UART 1 has sent (no pin is connected on the host).
    private(set) var uart1Output: [UInt8] = []
    private var receiver: UARTReceiver?
    // 2.2 keeps the size / end character between calls.
    private var needLength = 0
    private var endCharacter: UInt8?

    public init(runtime: Runtime) {
        self.runtime = runtime
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("setup") { [unowned self] lua throws(LuaError) in try setup(lua) }
        table.function("getconfig") { [unowned self] lua throws(LuaError) in try getconfig(lua) }
        table.function("alt") { [unowned self] lua throws(LuaError) in try alt(lua) }
        table.function("write") { [unowned self] lua throws(LuaError) in try write(lua) }
        table.function("on") { [unowned self] lua throws(LuaError) in try on(lua) }
        table.integer("PARITY_NONE", 0)
        table.integer("PARITY_EVEN", 1)
        table.integer("PARITY_ODD", 2)
        table.integer("STOPBITS_1", 1)
        table.integer("STOPBITS_2", 2)
        table.integer("STOPBITS_1_5", 3)
        if profile == .v3_0 {
            table.function("fifodepth") { lua throws(LuaError) in try Self.fifodepth(lua) }
            table.integer("DIR_RX", 0)
            table.integer("DIR_TX", 1)
        }
    }

    private func uartID(_ lua: LuaState, _ index: Int32) throws(LuaError) -> Int {
        let id = try lua.checkInteger(index)
        guard id == 0 || id == 1 else { throw .message("uart \(id) does not exist") }
        return id
    }

    /// Lua: uart.setup(id, baud, databits, parity, stopbits[, echo]) — returns the baud
    /// passed in, even when the hardware falls back to 9600 for an unsupported one.
    private func setup(_ lua: LuaState) throws(LuaError) -> Int32 {
        let id = try uartID(lua, 1)
        let baud = try lua.checkInteger(2)
        let databits = try lua.checkInteger(3)
        let parity = try lua.checkInteger(4)
        let stopbits = try lua.checkInteger(5)
        if lua.type(at: 6) == .number { echo = lua.integer(at: 6) != 0 }
        configs[id] = Config(
            baud: Self.bauds.contains(baud) ? baud : 9600,
            databits: (5...8).contains(databits) ? databits : 8,
            parity: parity == 1 || parity == 2 ? parity : 0,
            stopbits: stopbits == 2 || stopbits == 3 ? stopbits : 1)
        lua.push(baud)
        return 1
    }

    /// Lua: uart.getconfig(id) — `baud, databits, parity, stopbits`.
    private func getconfig(_ lua: LuaState) throws(LuaError) -> Int32 {
        let config = configs[try uartID(lua, 1)]
        for value in [config.baud, config.databits, config.parity, config.stopbits] { lua.push(value) }
        return 4
    }

    /// Lua: uart.alt(on) — moves UART 0 to GPIO13/15 (nonzero) or back; returns nothing.
    private func alt(_ lua: LuaState) throws(LuaError) -> Int32 {
        alternatePins = try lua.checkInteger(1) != 0
        return 0
    }

    /// Lua: uart.write(id, data1[, data2, …]) — a number is one byte (0..255), a string
    /// its bytes. UART 0 writes to the console directly, not through `node.output`.
    private func write(_ lua: LuaState) throws(LuaError) -> Int32 {
        let id = try uartID(lua, 1)
        var output: [UInt8] = []
        var index: Int32 = 2
        while index <= lua.top {
            if lua.type(at: index) == .number {
                guard let value = lua.integer(at: index), (0...255).contains(value) else { throw .message("invalid number") }
                output.append(UInt8(value))
            } else {
                guard lua.type(at: index) == .string, let bytes = lua.bytes(at: index) else {
                    throw lua.typeError(index, expected: "string")
                }
                output += bytes
            }
            index += 1
        }
        if id == 0 {
            output.withUnsafeBytes { runtime.serialWrite($0) }
        } else {
            uart1Output += output
        }
        return 0
    }

    /// Lua: uart.fifodepth([id[, dir]]) (3.0) — the host's FIFOs are always empty: 0.
    private static func fifodepth(_ lua: LuaState) throws(LuaError) -> Int32 {
        let id = try lua.optionalInteger(1, default: 0)
        guard id == 0 || id == 1 else { throw .argument(1, "Bad UART id; must be 0 or 1") }
        let direction = try lua.optionalInteger(2, default: 0)
        guard direction == 0 || direction == 1 else { throw .argument(2, "Bad direction; must be DIR_RX or DIR_TX") }
        lua.push(0)
        return 1
    }

    /// Lua: uart.on(method[, n or c][, fn[, run_input]])
    private func on(_ lua: LuaState) throws(LuaError) -> Int32 {
        var slot: Int32 = 2
        if profile == .v3_0 {
            let method = try lua.checkBytes(1)
            guard method == Array("data".utf8) else { throw .argument(1, "method not supported") }
            needLength = 0
            endCharacter = 0
        }
        let method = try lua.checkBytes(1)
        if lua.type(at: slot) == .number {
            let length = lua.integer(at: slot) ?? 0
            guard (0...255).contains(length) else {
                if profile == .v2_2 {
                    needLength = 255
                    throw .message("wrong arg range")
                }
                throw .argument(slot, "wrong arg range")
            }
            needLength = length
            endCharacter = nil
            slot += 1
        } else if lua.type(at: slot) == .string {
            let text = lua.bytes(at: slot) ?? []
            guard text.count == 1 else { throw .message("wrong arg range") }
            endCharacter = text[0]
            needLength = 0
            slot += 1
        }
        var runsInput = true
        let hasFunction = lua.isFunction(slot)
        if hasFunction, lua.type(at: slot + 1) == .number, lua.integer(at: slot + 1) == 0 { runsInput = false }
        guard method == Array("data".utf8) else { throw .message("method not supported") }

        receiver?.stop(on: lua)
        receiver = nil
        guard hasFunction else { return 0 }
        let receiver = UARTReceiver(module: self, runsInput: runsInput,
                                    needLength: needLength, endCharacter: endCharacter)
        receiver.setCallback(UARTReceiver.Event.data, from: slot, on: lua)
        self.receiver = receiver
        receiver.start()
        return 0
    }
}

/// The `uart.on("data")` registration of one boot: receives standard input from the
/// console and calls the script's function (3.0: traceback path; 2.2: PANIC).
final class UARTReceiver: LuaHandle, ConsoleReceiver {
    enum Event: Int, LuaHandleEvent { case data }

    unowned let module: UARTModule
    let runsInput: Bool
    let needLength: Int
    let endCharacter: UInt8?
    private var buffer: [UInt8] = []
    private var active = false

    init(module: UARTModule, runsInput: Bool, needLength: Int, endCharacter: UInt8?) {
        self.module = module
        self.runsInput = runsInput
        self.needLength = needLength
        self.endCharacter = endCharacter
        super.init(runtime: module.runtime, callbackSlots: 1)
    }

    func start() {
        let console = runtime.console
        console.receiver = self
        active = true
        guard !console.ended else { return }
        holdWithoutReference()
        console.startReading()
    }

    func stop(on lua: LuaState) {
        active = false
        if runtime.console.receiver === self { runtime.console.receiver = nil }
        releaseCallbacks(on: lua)
        runtime.release(self)
    }

    override func abortForReboot() {
        active = false
        super.abortForReboot()
    }

    private func call(_ bytes: [UInt8]) {
        guard active, let function = callback(Event.data) else { return }
        let lua = runtime.lua
        lua.push(function)
        lua.push(bytes)
        runtime.callback(runtime.profile == .v3_0 ? .task : .network, arguments: 1)
    }

    func receiveLine(_ line: [UInt8]) {
        // 2.2 skips empty lines; 3.0 calls fn("").
        if line.isEmpty && runtime.profile == .v2_2 { return }
        call(line)
    }

    func receiveRaw(_ bytes: [UInt8]) {
        let v30 = runtime.profile == .v3_0
        if needLength == 0 && endCharacter == nil {
            // 2.2: everything received so far, per batch. 3.0 (n = 0): one call per byte.
            if v30 { for byte in bytes { call([byte]) } } else { call(bytes) }
            return
        }
        if v30 && needLength == 0 && endCharacter == 0 {
            // 3.0 without a size or character: only a NUL byte (or 256 buffered) delivers.
            deliverOnCharacter(0, bytes)
            return
        }
        if let endCharacter {
            deliverOnCharacter(endCharacter, bytes)
            return
        }
        for byte in bytes {
            buffer.append(byte)
            if buffer.count >= needLength || buffer.count >= 256 {
                let chunk = buffer
                buffer = []
                call(chunk)
            }
        }
    }

    private func deliverOnCharacter(_ character: UInt8, _ bytes: [UInt8]) {
        for byte in bytes {
            buffer.append(byte)
            if byte == character || buffer.count >= 256 {
                let chunk = buffer
                buffer = []
                call(chunk)
            }
        }
    }

    func inputEnded() {
        runtime.release(self)
    }
}
