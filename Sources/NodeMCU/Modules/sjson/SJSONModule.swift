import LuaBridge

/// Lua: the `sjson` module (behaviour spec §5.3), both profiles.
///
/// Follows the firmware's app/modules/sjson.c and its parser app/sjson/jsonsl.c
/// (facts only; `JSONStreamParser` is this project's own tokenizer, since no Swift
/// JSON package parses incrementally with jsonsl's semantics and error names):
///
/// - `encode`/`encoder`: see `SJSONEncoder` (arrays vs objects, `null` option,
///   20 levels, functions called, profile number formats);
/// - `decode`/`decoder`: JSON `null` is the light userdata NULL, or `opts.null` when an
///   options table is given (nil if it has none); `opts.metatable` is set on every
///   decoded table; 20 levels counting strings and numbers (`LEVELS_EXCEEDED`); errors
///   `JSON parse error: <NAME>`, `Incomplete JSON object passed to sjson.decode`,
///   `JSON parse error: previous call`, `decode not complete`;
/// - `sjson.NULL`: the light userdata NULL in 2.2, absent (nil) in 3.0.
///
/// Like the device, `sjson.decode` returns only the first complete document and
/// ignores what follows it once that document is complete.
public final class SJSONModule: LuaModule {
    public static let name = "sjson"

    private let profile: FirmwareProfile
    private let encoderType: LuaObjectType<SJSONEncoder>
    private let decoderType: LuaObjectType<SJSONDecoder>

    public init(runtime: Runtime) {
        profile = runtime.profile
        let lua = runtime.lua
        encoderType = LuaObjectType(
            name: "sjson.encoder", in: lua,
            methods: [("read", { encoder, lua throws(LuaError) in try Self.read(encoder, lua) })],
            finalize: { lua, encoder in encoder.release(on: lua) })
        decoderType = LuaObjectType(
            name: "sjson.decoder", in: lua,
            methods: [
                ("write", { decoder, lua throws(LuaError) in try Self.write(decoder, lua) }),
                ("result", { decoder, lua throws(LuaError) in try Self.result(decoder, lua) }),
            ],
            finalize: { lua, decoder in decoder.release(on: lua) })
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("encode") { [unowned self] lua throws(LuaError) in try encode(lua) }
        table.function("encoder") { [unowned self] lua throws(LuaError) in try encoder(lua) }
        table.function("decode") { [unowned self] lua throws(LuaError) in try decode(lua) }
        table.function("decoder") { [unowned self] lua throws(LuaError) in decoder(lua) }
        if profile == .v2_2 { table.lightNull("NULL") }
    }

    private func checkTable(_ lua: LuaState, _ index: Int32) throws(LuaError) {
        guard lua.type(at: index) == .table else { throw lua.typeError(index, expected: "table") }
    }

    /// Lua: sjson.encode(table[, opts])
    private func encode(_ lua: LuaState) throws(LuaError) -> Int32 {
        try checkTable(lua, 1)
        let encoder = SJSONEncoder(table: 1, options: 2, profile: profile, on: lua)
        defer { encoder.release(on: lua) }
        guard let text = try encoder.read(Int.max, on: lua) else { return 0 }
        lua.push(text)
        return 1
    }

    /// Lua: sjson.encoder(table[, opts])
    private func encoder(_ lua: LuaState) throws(LuaError) -> Int32 {
        try checkTable(lua, 1)
        let encoder = SJSONEncoder(table: 1, options: 2, profile: profile, on: lua)
        encoderType.push(encoder, on: lua)
        return 1
    }

    /// Lua: encoder:read([size]) — up to `size` bytes (default 1024, at least 1); nothing at the end.
    private static func read(_ encoder: SJSONEncoder, _ lua: LuaState) throws(LuaError) -> Int32 {
        var size = 1024
        if lua.type(at: 2) == .number { size = max(1, lua.integer(at: 2) ?? 1) }
        guard let chunk = try encoder.read(size, on: lua) else { return 0 }
        lua.push(chunk)
        return 1
    }

    /// Lua: sjson.decode(str[, opts])
    private func decode(_ lua: LuaState) throws(LuaError) -> Int32 {
        let decoder = SJSONDecoder(options: 2, on: lua)
        defer { decoder.release(on: lua) }
        let outcome = lua.withBytes(at: 1) { bytes in
            Result { () throws(LuaError) in try decoder.write(bytes, on: lua) }
        }
        guard let outcome else { throw lua.typeError(1, expected: "string") }
        guard try outcome.get() else { throw .message("Incomplete JSON object passed to sjson.decode") }
        decoder.pushResult(on: lua)
        return 1
    }

    /// Lua: sjson.decoder([opts])
    private func decoder(_ lua: LuaState) -> Int32 {
        let decoder = SJSONDecoder(options: 1, on: lua)
        decoderType.push(decoder, on: lua)
        return 1
    }

    /// Lua: decoder:write(chunk) — the decoded value once complete, else nothing.
    private static func write(_ decoder: SJSONDecoder, _ lua: LuaState) throws(LuaError) -> Int32 {
        let outcome = lua.withBytes(at: 2) { bytes in
            Result { () throws(LuaError) in try decoder.write(bytes, on: lua) }
        }
        guard let outcome else { throw lua.typeError(2, expected: "string") }
        guard try outcome.get() else { return 0 }
        decoder.pushResult(on: lua)
        return 1
    }

    /// Lua: decoder:result() — the decoded value; error `decode not complete` before.
    private static func result(_ decoder: SJSONDecoder, _ lua: LuaState) throws(LuaError) -> Int32 {
        guard decoder.complete else { throw .message("decode not complete") }
        decoder.pushResult(on: lua)
        return 1
    }
}
