#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import LuaBridge

/// Lua: an `sjson.encoder` object (`:read([size])`), and the encoding itself, as the
/// firmware's app/modules/sjson.c does it:
///
/// - a table is an array if every key is a positive number (floats truncated, as the
///   5.1 device's `lua_tointeger`); its length is the largest key (kept in a 16-bit
///   field, as on the device) and holes are `null`; an empty table is `[]`; anything
///   else is an object in `next()` order, keys converted with `tostring`;
/// - at most 20 nested tables (the firmware's DEFAULT_DEPTH; the `depth` option is
///   misread and ignored), else error `encoder stack overflow`;
/// - a function is called (up to 10 times while it returns a function) and its
///   result encoded; an error in it is raised again with its message;
/// - strings escape only `"` and bytes below 0x20; numbers use the profile's format.
///
/// The device produces the whole text on the first read and then hands it out in
/// slices; so does the host (the table is read at the first `read`).
final class SJSONEncoder {
    static let maxLevels = 20

    private var tableRef: LuaRef?
    private var nullBytes: [UInt8]?
    private let profile: FirmwareProfile
    private var output: [UInt8]?
    private var offset = 0

    /// Keeps the table at `table` and reads `opts.null` from the options at `options`.
    init(table: Int32, options: Int32, profile: FirmwareProfile, on lua: LuaState) {
        self.profile = profile
        if lua.type(at: options) == .table {
            if lua.getField("null", in: options) == .string { nullBytes = lua.bytes(at: -1) }
            lua.pop()
        }
        tableRef = lua.ref(at: table)
    }

    /// The next at most `size` bytes, or nil at the end.
    func read(_ size: Int, on lua: LuaState) throws(LuaError) -> [UInt8]? {
        if output == nil {
            guard let tableRef else { return nil }
            var bytes: [UInt8] = []
            lua.push(tableRef)
            let top = lua.top
            do throws(LuaError) {
                try encodeTable(at: top, level: 0, into: &bytes, on: lua)
            } catch {
                lua.top = top - 1
                throw error
            }
            lua.top = top - 1
            lua.unref(tableRef)
            self.tableRef = nil
            output = bytes
        }
        guard let output, offset < output.count else { return nil }
        let end = min(output.count, offset + max(size, 1))
        defer { offset = end }
        return Array(output[offset..<end])
    }

    func release(on lua: LuaState) {
        if let tableRef { lua.unref(tableRef) }
        tableRef = nil
    }

    // MARK: Encoding

    /// -1 for an object, else the array length.
    private func arraySize(at table: Int32, on lua: LuaState) -> Int {
        var maxKey: Int32 = 0
        lua.pushNil()
        while lua.next(in: table) {
            lua.pop()
            guard lua.type(at: -1) == .number else { lua.pop(); return -1 }
            let key = Int32(clamping: lua.integer(at: -1) ?? 0)
            if key > maxKey {
                maxKey = key
            } else if key <= 0 {
                lua.pop()
                return -1
            }
        }
        return Int(Int16(truncatingIfNeeded: maxKey))
    }

    private func encodeTable(at table: Int32, level: Int, into out: inout [UInt8], on lua: LuaState) throws(LuaError) {
        // Each level keeps a key, a value and a key copy on the stack: past LUA_MINSTACK
        // (about 7 levels) the stack must grow, or the pushes corrupt the heap.
        guard lua.checkStack(4) else { throw .message("encoder stack overflow") }
        let size = arraySize(at: table, on: lua)
        if size >= 0 {
            out.append(UInt8(ascii: "["))
            if size > 0 {
                for index in 1...size {
                    if index > 1 { out.append(UInt8(ascii: ",")) }
                    _ = lua.rawGet(Int32(index), in: table)
                    try encodeValue(level: level, into: &out, on: lua)
                    lua.pop()
                }
            }
            out.append(UInt8(ascii: "]"))
            return
        }
        var first = true
        lua.pushNil()
        while lua.next(in: table) {
            out.append(first ? UInt8(ascii: "{") : UInt8(ascii: ","))
            first = false
            lua.pushValue(at: -2)
            if lua.type(at: -1) == .number {
                let text = formatKey(at: -1, on: lua)
                lua.pop()
                lua.push(text)
            }
            try encodeScalar(at: -1, into: &out, on: lua)
            lua.pop()
            out.append(UInt8(ascii: ":"))
            try encodeValue(level: level, into: &out, on: lua)
            lua.pop()
        }
        if first { out.append(UInt8(ascii: "{")) }
        out.append(UInt8(ascii: "}"))
    }

    /// Encodes the value on top (left there; functions are replaced by their result).
    private func encodeValue(level: Int, into out: inout [UInt8], on lua: LuaState) throws(LuaError) {
        var calls = 10
        while lua.isFunction(-1) && calls > 0 {
            calls -= 1
            if case .error(let error) = lua.pcall(arguments: 0, results: 1) {
                lua.pushNil()  // keep the caller's stack shape; the error ends the encoding
                throw .message(error.message)
            }
        }
        if lua.type(at: -1) == .table {
            if level + 1 >= Self.maxLevels { throw .message("encoder stack overflow") }
            try encodeTable(at: lua.top, level: level + 1, into: &out, on: lua)
            return
        }
        try encodeScalar(at: -1, into: &out, on: lua)
    }

    private func encodeScalar(at index: Int32, into out: inout [UInt8], on lua: LuaState) throws(LuaError) {
        var type = lua.type(at: index)
        if type == .string, let nullBytes, lua.bytes(at: index) == nullBytes { type = .nil_ }
        switch type {
        case .nil_, .none, .lightUserdata:
            out += Array("null".utf8)
        case .boolean:
            out += Array((lua.boolean(at: index) ? "true" : "false").utf8)
        case .number:
            out += Array(formatValue(at: index, on: lua).utf8)
        case .string:
            out.append(UInt8(ascii: "\""))
            for c in lua.bytes(at: index) ?? [] {
                switch c {
                case 0x0C: out += [0x5C, UInt8(ascii: "f")]
                case 0x0A: out += [0x5C, UInt8(ascii: "n")]
                case 0x09: out += [0x5C, UInt8(ascii: "t")]
                case 0x0D: out += [0x5C, UInt8(ascii: "r")]
                case 0x08: out += [0x5C, UInt8(ascii: "b")]
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    out += [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(c >> 4)], hex[Int(c & 0xF)]]
                case UInt8(ascii: "\""): out += [0x5C, c]
                default: out.append(c)
                }
            }
            out.append(UInt8(ascii: "\""))
        default:
            throw .message("Cannot encode type \(type.rawValue)")
        }
    }

    private func number(at index: Int32, on lua: LuaState) -> Double {
        if lua.isInteger(index), let value = lua.integer(at: index) { return Double(value) }
        return lua.number(at: index) ?? 0
    }

    /// A number value: the profile's `%.14g` / `%.19g` (the device's LUA_NUMBER_FMT);
    /// inf and nan are `null` in 3.0 and printed as the C library does in 2.2.
    private func formatValue(at index: Int32, on lua: LuaState) -> String {
        let value = number(at: index, on: lua)
        if !value.isFinite && profile == .v3_0 { return "null" }
        return Self.format(value, profile: profile)
    }

    /// A number key, as `tostring` on the device.
    private func formatKey(at index: Int32, on lua: LuaState) -> String {
        Self.format(number(at: index, on: lua), profile: profile)
    }

    static func format(_ value: Double, profile: FirmwareProfile) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        let format = profile == .v3_0 ? "%.19g" : "%.14g"
        var buffer = [CChar](repeating: 0, count: 64)
        _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, format, $0) }
        return FlashFileSystem.string(buffer)
    }
}
