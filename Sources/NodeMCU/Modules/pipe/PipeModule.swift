import LuaBridge

/// Lua: the `pipe` module (3.0 only; always compiled into 3.0 images): `pipe.create`
/// and the pipe methods `read`, `reader`, `unread`, `write`, `nrec`, as the firmware's
/// app/modules/pipe.c and docs/modules/pipe.md (more-modules §1.8, which wins where the
/// docs differ: `read()` defaults to `"\n"` with the newline dropped).
public final class PipeModule: LuaModule {
    public static let name = "pipe"
    public static func isAvailable(in profile: FirmwareProfile) -> Bool { profile == .v3_0 }

    unowned let runtime: Runtime
    private var pipeType: LuaObjectType<LuaPipe>!

    public init(runtime: Runtime) {
        self.runtime = runtime
        pipeType = LuaObjectType(
            name: "pipe", in: runtime.lua,
            methods: [
                ("read", { pipe, lua throws(LuaError) in try Self.read(pipe, lua) }),
                ("reader", { pipe, lua throws(LuaError) in try Self.reader(pipe, lua) }),
                ("unread", { pipe, lua throws(LuaError) in try Self.unread(pipe, lua) }),
                ("write", { pipe, lua throws(LuaError) in try Self.write(pipe, lua) }),
                ("nrec", { pipe, lua throws(LuaError) in Self.nrec(pipe, lua) }),
            ],
            metamethods: [
                ("__len", { [unowned self] lua throws(LuaError) in try length(lua) }),
                ("__tostring", { [unowned self] lua throws(LuaError) in try describe(lua) }),
            ],
            finalize: { lua, pipe in pipe.dispose(on: lua) })
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("create") { [unowned self] lua throws(LuaError) in try create(lua) }
    }

    /// A new pipe on the stack; with the function at `index` as its reader.
    func makePipe(readerAt index: Int32?, priority: TaskQueue.Priority, on lua: LuaState) -> LuaPipe {
        let pipe = LuaPipe(runtime: runtime, priority: priority)
        pipeType.push(pipe, on: lua)
        if let index {
            pipe.setCallback(LuaPipe.Event.reader, from: index, on: lua)
            pipe.userdataRef = lua.ref(at: -1)
        }
        return pipe
    }

    /// Lua: pipe.create([fn[, prio]])
    private func create(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard !lua.isNoneOrNil(1) else {
            _ = makePipe(readerAt: nil, priority: .medium, on: lua)
            return 1
        }
        guard lua.isFunction(1) else { throw lua.typeError(1, expected: "function") }
        var priority = TaskQueue.Priority.medium
        if !lua.isNoneOrNil(2) {
            guard let value = lua.integer(at: 2), let given = TaskQueue.Priority(rawValue: value) else {
                throw .argument(2, "invalid priority")
            }
            priority = given
        }
        _ = makePipe(readerAt: 1, priority: priority, on: lua)
        return 1
    }

    /// The size-or-delimiter argument of `read` and `reader`.
    private static func delimiter(_ lua: LuaState, _ index: Int32) throws(LuaError) -> LuaPipe.Delimiter {
        if lua.type(at: index) == .number {
            let count = lua.integer(at: index) ?? 0
            guard count > 0 else { throw .argument(index, "invalid chunk size") }
            return .count(count)
        }
        if lua.isNoneOrNil(index) { return .character(UInt8(ascii: "\n"), keep: false) }
        let text = lua.bytes(at: index) ?? []
        if text.count == 1 { return .character(text[0], keep: false) }
        if text.count == 2, text[1] == UInt8(ascii: "+") { return .character(text[0], keep: true) }
        throw .argument(index, "invalid delimiter")
    }

    /// Lua: p:read([size or delimiter]) — the next record, nil when empty.
    private static func read(_ pipe: LuaPipe, _ lua: LuaState) throws(LuaError) -> Int32 {
        let delimiter = try delimiter(lua, 2)
        if let record = pipe.read(delimiter) { lua.push(record) } else { lua.pushNil() }
        return 1
    }

    /// Lua: p:reader([size or delimiter]) — an iterator repeating `read` with that argument.
    private static func reader(_ pipe: LuaPipe, _ lua: LuaState) throws(LuaError) -> Int32 {
        let delimiter = try delimiter(lua, 2)
        lua.push(function: { [weak pipe] lua throws(LuaError) in
            if let record = pipe?.read(delimiter) { lua.push(record) } else { lua.pushNil() }
            return 1
        })
        return 1
    }

    /// Lua: p:unread(s) — pushes `s` back to the front.
    private static func unread(_ pipe: LuaPipe, _ lua: LuaState) throws(LuaError) -> Int32 {
        guard let bytes = lua.bytes(at: 2) else { throw .argument(2, "must be a string") }
        pipe.unread(bytes)
        return 0
    }

    /// Lua: p:write(s) — appends; `""` does nothing.
    private static func write(_ pipe: LuaPipe, _ lua: LuaState) throws(LuaError) -> Int32 {
        guard let bytes = lua.bytes(at: 2) else { throw .argument(2, "must be a string") }
        pipe.write(bytes)
        return 0
    }

    /// Lua: p:nrec() — the number of internal chunks.
    private static func nrec(_ pipe: LuaPipe, _ lua: LuaState) -> Int32 {
        lua.push(pipe.chunks.count)
        return 1
    }

    /// Lua: #p — internal chunks + 1.
    private func length(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pipe = try pipeType.check(1, on: lua)
        lua.push(pipe.chunks.count + 1)
        return 1
    }

    /// Lua: tostring(p) — `Pipe: 0x…`.
    private func describe(_ lua: LuaState) throws(LuaError) -> Int32 {
        let pipe = try pipeType.check(1, on: lua)
        lua.push("Pipe: 0x" + String(UInt(bitPattern: Unmanaged.passUnretained(pipe).toOpaque()), radix: 16))
        return 1
    }
}
