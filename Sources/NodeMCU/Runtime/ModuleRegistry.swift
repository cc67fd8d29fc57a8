import LuaBridge

/// The firmware modules of one boot: installs the modules the profile has as globals
/// and keeps them for the boot. A simulated reboot makes a new registry.
///
/// A module is built on first use. On the device the modules cost no RAM until a script
/// uses them: they are read-only tables in flash that global lookups reach without them
/// being in `_G`'s own hash part (2.2: the LTR "ROM" tables the VM falls back to; 3.0:
/// ROTables behind `_G`'s metatable, whose `__index` is the ROM table —
/// `app/lua53/linit.c`, "_G __index -> rotables __index"). So on the device
/// `rawget(_G, "tmr")` is nil and `pairs(_G)` lists no module; the host keeps its own
/// promise instead (README: `pairs(_G)` lists every installed module, `ModulePresenceTests`)
/// and puts a stub table per module in `_G`. The stub's metatable builds the module on the
/// first `__index`, `__newindex` or `__pairs` (its object, its table's functions and
/// constants, raw-set into the stub, which then loses the metatable and *is* the module
/// table), counted as firmware, not script, heap (`LuaState.withFirmwareAllocations`).
/// Until then only `next(tmr)`, `rawget(tmr, k)` and `getmetatable(tmr)` can tell.
///
/// Swift asks for a module with the subscript, which makes its object (not its table)
/// when the script has not used it yet. Modules whose `init` watches the board
/// (`LuaModule.createdAtBoot`: gpio, wifi) get their object at boot.
public final class ModuleRegistry {
    /// Every module the host provides; the profile decides which are installed.
    static var modules: [any LuaModule.Type] {
        [
            TimerModule.self,
            NodeModule.self,
            MQTTModule.self,
            BitModule.self,
            SJSONModule.self,
            FileModule.self,
            PipeModule.self,
            UARTModule.self,
            CryptoModule.self,
            EncoderModule.self,
            StructModule.self,
            NetModule.self,
            TLSModule.self,
            HTTPModule.self,
            GPIOModule.self,
            ADCModule.self,
            DHTModule.self,
            PWMModule.self,
            WiFiModule.self,
            EndUserSetupModule.self,
            RTCTimeModule.self,
            SNTPModule.self,
            CronModule.self,
            I2CModule.self,
            SPIModule.self,
            OneWireModule.self,
        ]
    }

    /// The names of every module the host provides (`--modules` checks against them).
    public static var moduleNames: [String] { modules.map { $0.name } }

    /// Whether `type` is installed in a run with `options` (the profile has it, and
    /// `--modules` lists it when given).
    static func installs(_ type: any LuaModule.Type, with options: RuntimeOptions) -> Bool {
        type.isAvailable(in: options.profile) && (options.modules?.contains(type.name) ?? true)
    }

    /// By position in `modules` (arrays, not dictionaries: a fleet has one registry
    /// per device).
    private var installed: [(any LuaModule)?] = []
    /// The stub tables in `_G` not built yet, by identity.
    private var stubs: [UnsafeRawPointer?] = []
    /// Unowned, not weak: the runtime owns the registry, and a weak reference would give
    /// the runtime a side table, which turns every retain and release of it (several per
    /// MQTT round trip) into the slow path (+1 900 instructions per QoS 0 round trip).
    private unowned var runtime: Runtime?

    public init() {}

    /// The installed module of type `Module`, if the profile has it; made now if the
    /// script has not used it yet.
    public subscript<Module: LuaModule>(_ type: Module.Type) -> Module? {
        guard let position = Self.modules.firstIndex(where: { ObjectIdentifier($0) == ObjectIdentifier(type) }) else { return nil }
        return object(at: position) as? Module
    }

    private func object(at position: Int) -> (any LuaModule)? {
        if position < installed.count, let module = installed[position] { return module }
        let type = Self.modules[position]
        guard let runtime, Self.installs(type, with: runtime.options) else { return nil }
        let lua = runtime.lua
        // Its handle types' metatables are made on the main thread's stack, which may
        // be suspended under a coroutine that touched the module.
        _ = lua.checkStack(8)
        let module = lua.withFirmwareAllocations { type.init(runtime: runtime) }
        if installed.isEmpty { installed = Array(repeating: nil, count: Self.modules.count) }
        installed[position] = module
        return module
    }

    func installAll(in runtime: Runtime) {
        self.runtime = runtime
        let lua = runtime.lua
        // The stubs' shared metatable.
        lua.newTable(fieldCapacity: 3)
        lua.push(pinnedFunction: { [unowned self] lua throws(LuaError) in
            build(lua, stubAt: 1)
            lua.pushValue(at: 2)
            _ = lua.rawGet(in: 1)
            return 1
        })
        lua.setField("__index", in: -2)
        lua.push(pinnedFunction: { [unowned self] lua throws(LuaError) in
            build(lua, stubAt: 1)
            lua.top = 3
            lua.rawSet(in: 1)
            return 0
        })
        lua.setField("__newindex", in: -2)
        _ = lua.getGlobal("next")
        let next = lua.ref()
        lua.push(pinnedFunction: { [unowned self] lua throws(LuaError) in
            build(lua, stubAt: 1)
            _ = lua.push(next)
            lua.pushValue(at: 1)
            lua.pushNil()
            return 3
        })
        lua.setField("__pairs", in: -2)
        let all = Self.modules
        stubs = Array(repeating: nil, count: all.count)
        for (position, type) in all.enumerated() where Self.installs(type, with: runtime.options) {
            if type.createdAtBoot { _ = object(at: position) }
            lua.newTable()
            lua.pushValue(at: -2)
            lua.setMetatable(at: -2)
            stubs[position] = lua.pointer(at: -1)
            lua.setGlobal(type.name)
        }
        lua.pop()
    }

    /// Builds the module whose stub is at `index` (nothing if it is not a stub, or built).
    private func build(_ lua: LuaState, stubAt index: Int32) {
        guard let pointer = lua.pointer(at: index), let position = stubs.firstIndex(of: pointer),
              let module = object(at: position) else { return }
        stubs[position] = nil
        var table = LuaModuleTable()
        module.register(in: &table)
        lua.withFirmwareAllocations {
            lua.pushNil()
            lua.setMetatable(at: index)
            table.fill(tableAt: index, on: lua)
        }
    }
}
