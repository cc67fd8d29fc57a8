/// The firmware's slot-parsing rule for `mqtt.Client`, `m:connect` and `m:lwt`
/// (behaviour spec §2.3): slots are filled in order; an argument fills the current
/// slot only if its type fits, else the same argument is tried against the next
/// slot. nil fits no typed slot, so with typed slots a nil ends the parsing.
public struct ArgumentSlots {
    public enum Fit: Sendable {
        /// A string or a number.
        case stringLike
        /// A number or a string convertible to one.
        case numberLike
        /// number-like or a boolean (3.0's `secure`).
        case numberOrBoolean
        /// Anything, nil included: the slot is consumed whatever it holds.
        case anything
    }

    /// For each slot, the stack index of the argument that filled it.
    public private(set) var filled: [Int32?]
    /// Stack indexes of arguments no slot took.
    public private(set) var unused: [Int32] = []

    public init(_ lua: LuaState, from first: Int32, slots: [Fit]) {
        filled = Array(repeating: nil, count: slots.count)
        let last = lua.top
        var index = first
        var slot = 0
        while index <= last && slot < slots.count {
            if Self.fits(lua, index, slots[slot]) {
                filled[slot] = index
                index += 1
            }
            slot += 1
        }
        if index <= last { unused = Array(index...last) }
    }

    public subscript(slot: Int) -> Int32? { filled[slot] }

    public static func fits(_ lua: LuaState, _ index: Int32, _ fit: Fit) -> Bool {
        switch fit {
        case .stringLike: return lua.isStringLike(index)
        case .numberLike: return lua.number(at: index) != nil
        case .numberOrBoolean: return lua.type(at: index) == .boolean || lua.number(at: index) != nil
        case .anything: return true
        }
    }

    /// Unused arguments other than nil (and, if `ignoringFalse`, false), described
    /// for a quirk warning: "argument 5 (1) is ignored". `selfOffset` converts stack
    /// indexes to argument numbers (1 for method calls).
    public func ignoredDescriptions(_ lua: LuaState, selfOffset: Int32, ignoringFalse: Bool = false) -> [String] {
        unused.compactMap { index in
            let type = lua.type(at: index)
            if type == .nil_ || (ignoringFalse && type == .boolean && !lua.boolean(at: index)) { return nil }
            return "argument \(index - selfOffset) (\(Self.describe(lua, index))) is ignored"
        }
    }

    /// A short description of a value for warnings: literals for nil, booleans and
    /// numbers, the type name otherwise.
    public static func describe(_ lua: LuaState, _ index: Int32) -> String {
        switch lua.type(at: index) {
        case .none, .nil_: return "nil"
        case .boolean: return lua.boolean(at: index) ? "true" : "false"
        case .number:
            // Not lua_tolstring: that would turn the argument itself into a string.
            if let value = lua.number(at: index), value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
            return lua.number(at: index).map { String($0) } ?? "number"
        default: return lua.typeName(at: index)
        }
    }
}
