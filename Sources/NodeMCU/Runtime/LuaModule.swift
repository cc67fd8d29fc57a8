import LuaBridge

/// A firmware module as scripts see it: a global table of functions and constants,
/// like one file of the firmware's app/modules.
///
/// A module is created anew on every boot (after the Lua state), then asked for its
/// table. Functions capture the module `[unowned self]`: the registry keeps it for the
/// whole boot, and a reboot closes the Lua state (so every function) before dropping it.
/// Handle types (`LuaObjectType`) are made in `init`; their methods are the handle's.
///
/// Adding one: a type conforming to this protocol in `Modules/<name>/`, a `LuaHandle`
/// subclass per handle type, and one line in `ModuleRegistry.modules`.
public protocol LuaModule: AnyObject {
    /// The global name (`tmr`, `mqtt`, …).
    static var name: String { get }
    /// Whether the profile's firmware has this module (default: both profiles).
    static func isAvailable(in profile: FirmwareProfile) -> Bool

    /// Whether the module's object must exist from boot, before the script first
    /// touches the module: its `init` watches the board (gpio edges, Wi-Fi events).
    /// Default false: the object and its table are made on first use.
    static var createdAtBoot: Bool { get }

    init(runtime: Runtime)

    /// Adds the module's functions and constants; each function is headed
    /// `/// Lua: signature` where it is defined.
    func register(in table: inout LuaModuleTable)
}

extension LuaModule {
    public static func isAvailable(in profile: FirmwareProfile) -> Bool { true }
    public static var createdAtBoot: Bool { false }
}

/// The contents of a module table, collected before it is built in the Lua state.
public struct LuaModuleTable {
    public init() {}

    fileprivate(set) var functions: [(String, LuaFunction.Body)] = []
    fileprivate(set) var integers: [(String, Int)] = []
    fileprivate(set) var lightNulls: [String] = []
    fileprivate(set) var strings: [(String, String)] = []
    fileprivate(set) var tables: [(String, LuaModuleTable)] = []

    public mutating func function(_ name: String, _ body: @escaping LuaFunction.Body) {
        functions.append((name, body))
    }

    public mutating func integer(_ name: String, _ value: Int) {
        integers.append((name, value))
    }

    public mutating func string(_ name: String, _ value: String) {
        strings.append((name, value))
    }

    /// A nested table (`net.dns`, `tls.cert`, shared by `net.cert`).
    public mutating func table(_ name: String, _ contents: LuaModuleTable) {
        tables.append((name, contents))
    }

    /// A nested table (`node.task`, `node.egc`, …), filled by `build`.
    public mutating func table(_ name: String, _ build: (inout LuaModuleTable) -> Void) {
        var nested = LuaModuleTable()
        build(&nested)
        table(name, nested)
    }

    /// A light userdata NULL constant (2.2's `sjson.NULL`).
    public mutating func lightNull(_ name: String) {
        lightNulls.append(name)
    }

    var count: Int { functions.count + integers.count + lightNulls.count + strings.count + tables.count }

    /// Pushes the table.
    func push(on lua: LuaState) {
        lua.newTable(fieldCapacity: Int32(count))
        fill(tableAt: -1, on: lua)
    }

    /// Sets the contents into the table at `index` (raw sets). The functions live as
    /// long as the state (`push(pinnedFunction:)`).
    func fill(tableAt index: Int32, on lua: LuaState) {
        let index = lua.absolute(index)
        for (name, body) in functions {
            lua.push(pinnedFunction: body)
            lua.setField(name, in: index)
        }
        for (name, value) in integers {
            lua.push(value)
            lua.setField(name, in: index)
        }
        for (name, value) in strings {
            lua.push(value)
            lua.setField(name, in: index)
        }
        for (name, nested) in tables {
            nested.push(on: lua)
            lua.setField(name, in: index)
        }
        for name in lightNulls {
            lua.pushLightNull()
            lua.setField(name, in: index)
        }
    }
}
