import LuaBridge

/// The firmware modules of one boot: installs the modules the profile has as globals
/// and keeps them for the boot. A simulated reboot makes a new registry.
public struct ModuleRegistry {
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

    private var installed: [ObjectIdentifier: any LuaModule] = [:]

    public init() {}

    /// The installed module of type `Module`, if the profile has it.
    public subscript<Module: LuaModule>(_ type: Module.Type) -> Module? {
        installed[ObjectIdentifier(type)] as? Module
    }

    mutating func installAll(in runtime: Runtime) {
        let lua = runtime.lua
        for type in Self.modules where Self.installs(type, with: runtime.options) {
            let module = type.init(runtime: runtime)
            var table = LuaModuleTable()
            module.register(in: &table)
            table.push(on: lua)
            lua.setGlobal(type.name)
            installed[ObjectIdentifier(type)] = module
        }
    }
}
