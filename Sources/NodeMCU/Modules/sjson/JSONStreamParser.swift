/// An incremental JSON tokenizer with the rules and error names of jsonsl, the
/// parser the firmware's sjson module uses (app/sjson/jsonsl.c, read for its facts;
/// this is not a port of its code). No Swift package available here parses JSON
/// incrementally with these semantics (error names, the level limit that counts
/// strings and numbers, the quirks scripts can observe), hence this type.
///
/// Bytes are fed in chunks of any size (one byte at a time works); values are
/// reported as events. Every value, string and bare word occupies one level, as in
/// jsonsl: with `levels` 20 the outermost container is level 1 and nothing may go
/// beyond level 19 (`LEVELS_EXCEEDED`). No Lua here.
struct JSONStreamParser {
    enum Event {
        /// A `{` or `[` opened at `level`.
        case open(isObject: Bool, level: Int)
        /// The container at `level` closed.
        case close(level: Int)
        /// A complete string (raw content, escapes not yet processed) at `level`.
        case string(raw: [UInt8], isKey: Bool, level: Int)
        /// A complete bare word (number, true, false, null) at `level`.
        case special(Special, level: Int)
    }

    enum Special {
        case `true`, `false`, null
        case number([UInt8])
    }

    private enum Kind { case root, object, list, string, hkey, special }

    private struct Flags: OptionSet {
        let rawValue: UInt16
        static let unsigned = Flags(rawValue: 1)
        static let signed = Flags(rawValue: 2)
        static let dash = Flags(rawValue: 4)
        static let zero = Flags(rawValue: 8)
        static let float = Flags(rawValue: 16)
        static let exponent = Flags(rawValue: 32)
        static let `true` = Flags(rawValue: 64)
        static let `false` = Flags(rawValue: 128)
        static let null = Flags(rawValue: 256)
        static let numeric: Flags = [.signed, .unsigned]
    }

    private struct Frame {
        var kind: Kind
        var count = 0
        var flags: Flags = []
        var length = 0
        var text: [UInt8] = []
    }

    private let levelsMax: Int
    private var stack: [Frame] = [Frame(kind: .root)]
    private var expecting: UInt8 = 0
    private var lastToken: UInt8 = 0
    private var canInsert = true
    private var inEscape = false
    /// The error name once parsing failed; the parser then accepts nothing more.
    private(set) var error: String?

    init(levels: Int) { levelsMax = levels }

    private var level: Int { stack.count - 1 }

    private static func isWhitespace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }

    private static func isSpecialEnd(_ c: UInt8) -> Bool {
        switch c {
        case 0x09, 0x0A, 0x0D, 0x20, UInt8(ascii: "\""), UInt8(ascii: ","), UInt8(ascii: ":"),
             UInt8(ascii: "["), UInt8(ascii: "\\"), UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"):
            return true
        default: return false
        }
    }

    private static func specialStart(_ c: UInt8) -> Flags {
        switch c {
        case UInt8(ascii: "-"): return .dash
        case UInt8(ascii: "0"): return .zero
        case UInt8(ascii: "1")...UInt8(ascii: "9"): return .unsigned
        case UInt8(ascii: "t"): return .true
        case UInt8(ascii: "f"): return .false
        case UInt8(ascii: "n"): return .null
        default: return []
        }
    }

    private static func isAllowedEscape(_ c: UInt8) -> Bool {
        "\"/\\bfnrtu".utf8.contains(c)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// Feeds bytes; reports events through `emit`. Stops at the first error (`error`).
    /// `emit` returns false to stop early (without an error).
    mutating func feed(_ bytes: UnsafeRawBufferPointer, _ emit: (Event) -> Bool) {
        guard error == nil else { return }
        var index = 0
        while index < bytes.count {
            let c = bytes[index]
            index += 1
            switch step(c, emit) {
            case .next: continue
            case .stop: return
            }
        }
    }

    private enum Step { case next, stop }

    private mutating func fail(_ name: String) -> Step {
        error = name
        return .stop
    }

    private mutating func push(_ frame: Frame) -> Bool {
        if level >= levelsMax - 1 {
            error = "LEVELS_EXCEEDED"
            return false
        }
        stack.append(frame)
        return true
    }

    private mutating func step(_ c: UInt8, _ emit: (Event) -> Bool) -> Step {
        let kind = stack[level].kind
        if kind == .string || kind == .hkey {
            if inEscape {
                inEscape = false
                guard Self.isAllowedEscape(c) else { return fail("ESCAPE_INVALID") }
                stack[level].text.append(c)
                return .next
            }
            if c >= 0x14 && c != UInt8(ascii: "\"") && c != UInt8(ascii: "\\") {
                stack[level].text.append(c)
                return .next
            }
            if c == UInt8(ascii: "\"") { return quote(c, emit) }
            if c == UInt8(ascii: "\\") {
                inEscape = true
                stack[level].text.append(c)
                return .next
            }
            return fail("WEIRD_WHITESPACE")
        }
        if kind == .special {
            switch special(c, emit) {
            case .next: return .next
            case .stop: return .stop
            case .popped:
                if Self.isWhitespace(c) { return .next }
                return structural(c, emit)
            }
        }
        if Self.isWhitespace(c) { return .next }
        if !Self.specialStart(c).isEmpty { return beginSpecial(c, emit) }
        if c == UInt8(ascii: "\"") { return quote(c, emit) }
        if c == UInt8(ascii: "\\") { return fail("ESCAPE_OUTSIDE_STRING") }
        return structural(c, emit)
    }

    private enum SpecialStep { case next, stop, popped }

    /// A byte inside a bare word.
    private mutating func special(_ c: UInt8, _ emit: (Event) -> Bool) -> SpecialStep {
        var frame = stack[level]
        let normal = frame.flags == .unsigned || frame.flags == .signed
        var numeric = false
        if normal {
            if Self.isDigit(c) {
                stack[level].text.append(c)
                return .next
            }
            numeric = true
        } else if frame.flags == .dash {
            guard Self.isDigit(c) else { error = "INVALID_NUMBER"; return .stop }
            stack[level].flags = c == UInt8(ascii: "0") ? [.zero, .signed] : .signed
            stack[level].text.append(c)
            return .next
        } else if frame.flags == .zero {
            if Self.isDigit(c) { error = "INVALID_NUMBER"; return .stop }
            frame.flags = .unsigned
            stack[level].flags = .unsigned
            numeric = true
        } else if !frame.flags.isDisjoint(with: .numeric) {
            numeric = true
        }
        if numeric {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                lastToken = UInt8(ascii: "1")
                stack[level].text.append(c)
                return .next
            case UInt8(ascii: "."):
                if frame.flags.contains(.float) { error = "INVALID_NUMBER"; return .stop }
                stack[level].flags.insert(.float)
                lastToken = c
                stack[level].text.append(c)
                return .next
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                if frame.flags.contains(.exponent) { error = "INVALID_NUMBER"; return .stop }
                stack[level].flags.insert(.exponent)
                lastToken = UInt8(ascii: "e")
                stack[level].text.append(c)
                return .next
            case UInt8(ascii: "-"), UInt8(ascii: "+"):
                if lastToken != UInt8(ascii: "e") { error = "INVALID_NUMBER"; return .stop }
                lastToken = UInt8(ascii: "-")
                stack[level].text.append(c)
                return .next
            default:
                guard Self.isSpecialEnd(c) else { error = "INVALID_NUMBER"; return .stop }
                return popSpecial(emit)
            }
        }
        if !Self.isSpecialEnd(c) {
            stack[level].length += 1
            let literal: [UInt8]
            if frame.flags == .true { literal = Array("true".utf8) }
            else if frame.flags == .false { literal = Array("false".utf8) }
            else { literal = Array("null".utf8) }
            let position = stack[level].length - 1
            if position >= literal.count || literal[position] != c { error = "SPECIAL_EXPECTED"; return .stop }
            return .next
        }
        return popSpecial(emit)
    }

    private mutating func popSpecial(_ emit: (Event) -> Bool) -> SpecialStep {
        canInsert = false
        let frame = stack[level]
        let value: Special
        if frame.flags == .unsigned || frame.flags == .signed || frame.flags == .zero || frame.flags == [.zero, .signed] {
            value = .number(frame.text)
        } else if frame.flags == .dash {
            error = "INVALID_NUMBER"; return .stop
        } else if !frame.flags.isDisjoint(with: .numeric) {
            if lastToken != UInt8(ascii: "1") { error = "INVALID_NUMBER"; return .stop }
            value = .number(frame.text)
        } else if frame.flags == .true {
            if frame.length != 4 { error = "SPECIAL_INCOMPLETE"; return .stop }
            value = .true
        } else if frame.flags == .false {
            if frame.length != 5 { error = "SPECIAL_INCOMPLETE"; return .stop }
            value = .false
        } else {
            if frame.length != 4 { error = "SPECIAL_INCOMPLETE"; return .stop }
            value = .null
        }
        let poppedLevel = level
        stack.removeLast()
        expecting = UInt8(ascii: ",")
        lastToken = 0
        guard emit(.special(value, level: poppedLevel)) else { return .stop }
        return .popped
    }

    private mutating func beginSpecial(_ c: UInt8, _ emit: (Event) -> Bool) -> Step {
        let flags = Self.specialStart(c)
        if stack[level].kind == .object && stack[level].count % 2 == 0 { return fail("HKEY_EXPECTED") }
        stack[level].count += 1
        if !canInsert { return fail("CANT_INSERT") }
        guard push(Frame(kind: .special, flags: flags, length: 1, text: [c])) else { return .stop }
        lastToken = flags == .unsigned ? UInt8(ascii: "1") : UInt8(ascii: "-")
        return .next
    }

    private mutating func quote(_ c: UInt8, _ emit: (Event) -> Bool) -> Step {
        canInsert = false
        switch stack[level].kind {
        case .string, .hkey:
            let frame = stack.removeLast()
            return emit(.string(raw: frame.text, isKey: frame.kind == .hkey, level: level + 1)) ? .next : .stop
        case .object:
            stack[level].count += 1
            if (stack[level].count - 1) % 2 != 0 {
                if lastToken != UInt8(ascii: ":") { return fail("MISSING_TOKEN") }
                expecting = UInt8(ascii: ",")
                lastToken = 0
                return push(Frame(kind: .string)) ? .next : .stop
            }
            if expecting != UInt8(ascii: "\"") { return fail("STRAY_TOKEN") }
            lastToken = 0
            expecting = UInt8(ascii: ":")
            return push(Frame(kind: .hkey)) ? .next : .stop
        case .list:
            stack[level].count += 1
            guard push(Frame(kind: .string)) else { return .stop }
            expecting = UInt8(ascii: ",")
            lastToken = 0
            return .next
        case .special:
            return fail("STRAY_TOKEN")
        case .root:
            return fail("STRING_OUTSIDE_CONTAINER")
        }
    }

    private mutating func structural(_ c: UInt8, _ emit: (Event) -> Bool) -> Step {
        switch c {
        case UInt8(ascii: ":"):
            if expecting != c { return fail("STRAY_TOKEN") }
            lastToken = c
            canInsert = true
            expecting = UInt8(ascii: "\"")
            return .next
        case UInt8(ascii: ","):
            if expecting != c { return fail("STRAY_TOKEN") }
            if stack[level].kind != .object { canInsert = true }
            lastToken = c
            expecting = UInt8(ascii: "\"")
            return .next
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            if !canInsert { return fail("CANT_INSERT") }
            if stack[level].kind == .object && stack[level].count % 2 == 0 { return fail("HKEY_EXPECTED") }
            stack[level].count += 1
            let isObject = c == UInt8(ascii: "{")
            guard push(Frame(kind: isObject ? .object : .list)) else { return .stop }
            canInsert = true
            if isObject { expecting = UInt8(ascii: "\"") }
            lastToken = 0
            return emit(.open(isObject: isObject, level: level)) ? .next : .stop
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
            if lastToken == UInt8(ascii: ",") { return fail("TRAILING_COMMA") }
            canInsert = false
            expecting = UInt8(ascii: ",")
            lastToken = 0
            let frame = stack[level]
            if c == UInt8(ascii: "]") {
                if frame.kind != .list { return fail("BRACKET_MISMATCH") }
            } else {
                if frame.kind != .object { return fail("BRACKET_MISMATCH") }
                if frame.count != 0 && frame.count % 2 != 0 { return fail("VALUE_EXPECTED") }
            }
            let closed = level
            stack.removeLast()
            return emit(.close(level: closed)) ? .next : .stop
        default:
            if stack[level].kind != .special {
                if c == 0 { return fail("FOUND_NULL_BYTE") }
                if c < 0x20 { return fail("WEIRD_WHITESPACE") }
                return fail("SPECIAL_EXPECTED")
            }
            return .next
        }
    }
}
