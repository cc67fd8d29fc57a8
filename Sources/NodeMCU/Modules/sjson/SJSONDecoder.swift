import LuaBridge

/// Lua: an `sjson.decoder` object (`:write(chunk)`, `:result()`): builds Lua tables
/// from JSON fed in chunks, as the firmware's app/modules/sjson.c does on top of
/// jsonsl (here `JSONStreamParser`).
///
/// The partial result lives in registry references (one per open container, like the
/// firmware's per-level refs) so it survives between writes; `release(on:)` drops them.
/// Values are stored with raw sets, so a `metatable` option's `__newindex` is not run
/// (the firmware uses `lua_settable`). The metatable's `checkpath` hook is not supported.
final class SJSONDecoder {
    /// What a JSON `null` becomes.
    enum NullValue {
        /// The light userdata NULL (no options table).
        case lightNull
        /// `opts.null` when given.
        case value(LuaRef)
        /// An options table without `null`: nil (the key is absent).
        case absent
    }

    /// The firmware's DEFAULT_DEPTH; its `depth` option is misread and ignored.
    static let levels = 20

    private var parser = JSONStreamParser(levels: SJSONDecoder.levels)
    private var resultRef: LuaRef?
    private var tables: [LuaRef?] = Array(repeating: nil, count: SJSONDecoder.levels + 1)
    private var used: [Int] = Array(repeating: 0, count: SJSONDecoder.levels + 1)
    private var pendingKey: [UInt8]?
    private var null: NullValue = .lightNull
    private var metatable: LuaRef?
    private(set) var complete = false
    private var failed = false

    /// Reads the options table at `options` (if it is one) and creates the result table.
    init(options: Int32, on lua: LuaState) {
        if lua.type(at: options) == .table {
            if lua.getField("null", in: options) == .nil_ {
                lua.pop()
                null = .absent
            } else {
                null = .value(lua.ref())
            }
            if lua.getField("metatable", in: options) == .table {
                metatable = lua.ref()
            } else {
                lua.pop()
            }
        }
        lua.newTable()
        resultRef = lua.ref()
    }

    /// Lua: decoder:write(chunk) — feeds `bytes`; returns true once the document is complete.
    func write(_ bytes: UnsafeRawBufferPointer, on lua: LuaState) throws(LuaError) -> Bool {
        if failed { throw .message("JSON parse error: previous call") }
        if !complete {
            parser.feed(bytes) { event in handle(event, on: lua) }
            if let error = parser.error, !complete {
                failed = true
                throw .message("JSON parse error: \(error)")
            }
        }
        return complete
    }

    /// Pushes the decoded value (`result[1]`).
    func pushResult(on lua: LuaState) {
        guard let resultRef else { lua.pushNil(); return }
        lua.push(resultRef)
        _ = lua.rawGet(1, in: -1)
        lua.remove(at: -2)
    }

    /// Drops every registry reference (`__gc`).
    func release(on lua: LuaState) {
        for case let ref? in tables { lua.unref(ref) }
        tables = Array(repeating: nil, count: tables.count)
        if case .value(let ref) = null { lua.unref(ref) }
        null = .lightNull
        if let metatable { lua.unref(metatable) }
        metatable = nil
        if let resultRef { lua.unref(resultRef) }
        resultRef = nil
    }

    // MARK: Building the tables

    private func handle(_ event: JSONStreamParser.Event, on lua: LuaState) -> Bool {
        switch event {
        case .open(_, let level):
            lua.newTable()
            if let metatable {
                lua.push(metatable)
                lua.setMetatable(at: -2)
            }
            tables[level] = lua.ref(at: -1)
            used[level] = 0
            store(level: level, on: lua)  // pops the table
        case .close(let level):
            if let ref = tables[level] { lua.unref(ref) }
            tables[level] = nil
            if level == 1 {
                // The first document is complete: stop, so what follows it in the same
                // write is ignored as it is when it comes in a later write.
                complete = true
                return false
            }
        case .string(let raw, let isKey, let level):
            if isKey {
                pendingKey = Self.unescape(raw)
            } else {
                lua.push(Self.unescape(raw))
                store(level: level, on: lua)
            }
        case .special(let value, let level):
            switch value {
            case .true: lua.push(true)
            case .false: lua.push(false)
            case .null:
                switch null {
                case .lightNull: lua.pushLightNull()
                case .value(let ref): lua.push(ref)
                case .absent: lua.pushNil()
                }
            case .number(let text):
                // As the device's lua_tonumber: text Lua cannot read (1e5.5) is 0.
                if !lua.pushNumber(parsing: text) { lua.push(0) }
            }
            store(level: level, on: lua)
        }
        return true
    }

    /// Pops the value on top into the container that holds `level`: under the pending
    /// object key, else appended to the list (the outermost value is `result[1]`).
    private func store(level: Int, on lua: LuaState) {
        if level == 1 {
            guard let resultRef else { lua.pop(); return }
            lua.push(resultRef)
        } else if let parent = tables[level - 1] {
            lua.push(parent)
        } else {
            lua.pop()
            return
        }
        if let key = pendingKey {
            lua.push(key)
            pendingKey = nil
        } else if level == 1 {
            lua.push(1)
        } else {
            used[level - 1] += 1
            lua.push(used[level - 1])
        }
        lua.pushValue(at: -3)
        lua.rawSet(in: -3)
        lua.pop(2)
    }

    /// The firmware's string conversion: the simple escapes, `\uXXXX` as UTF-8 (hex
    /// digits read leniently; surrogates, paired or not, become `?`).
    static func unescape(_ raw: [UInt8]) -> [UInt8] {
        guard raw.contains(UInt8(ascii: "\\")) else { return raw }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            let c = raw[i]
            i += 1
            guard c == UInt8(ascii: "\\"), i < raw.count else { out.append(c); continue }
            let e = raw[i]
            i += 1
            switch e {
            case UInt8(ascii: "b"): out.append(8)
            case UInt8(ascii: "f"): out.append(12)
            case UInt8(ascii: "n"): out.append(10)
            case UInt8(ascii: "r"): out.append(13)
            case UInt8(ascii: "t"): out.append(9)
            case UInt8(ascii: "u"):
                var code = 0
                for _ in 0..<4 {
                    let h = i < raw.count ? raw[i] : UInt8(ascii: "0")
                    i += 1
                    let nibble = h <= UInt8(ascii: "9") ? Int(h & 0xF) : Int((h &- UInt8(ascii: "A") &+ 10) & 0xF)
                    code = code << 4 | nibble
                }
                appendUTF8(code, to: &out)
            default: out.append(e)
            }
        }
        return out
    }

    private static func appendUTF8(_ c: Int, to out: inout [UInt8]) {
        if c < 0x80 {
            out.append(UInt8(c))
        } else if c < 0x800 {
            out += [UInt8(0xC0 | c >> 6), UInt8(0x80 | c & 0x3F)]
        } else if c >= 0xD800 && c < 0xE000 {
            out.append(UInt8(ascii: "?"))
        } else {
            out += [UInt8(0xE0 | c >> 12), UInt8(0x80 | (c >> 6) & 0x3F), UInt8(0x80 | c & 0x3F)]
        }
    }
}
