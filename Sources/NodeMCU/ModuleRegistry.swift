import LuaBridge

/// The firmware modules of one boot. Each module is one file, like the
/// firmware's app/modules; a simulated reboot creates them anew.
public struct ModuleRegistry {
    public internal(set) var tmr: TimerModule?
    public internal(set) var node: NodeModule?
    public internal(set) var mqtt: MQTTModule?

    public init() {}

    mutating func installAll(in runtime: Runtime) {
        tmr = TimerModule(runtime: runtime)
        node = NodeModule(runtime: runtime)
        mqtt = MQTTModule(runtime: runtime)
    }
}

extension LuaState {
    /// Sets `name` in the table on top to a Swift function.
    func setFunction(_ name: String, _ body: @escaping LuaFunction.Body) {
        push(function: body)
        setField(name, in: -2)
    }

    func setInteger(_ name: String, _ value: Int) {
        push(value)
        setField(name, in: -2)
    }
}
