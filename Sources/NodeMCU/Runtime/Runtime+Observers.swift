import LuaBridge

/// Something a device did that a host-side watcher (the `--report` collector, a test
/// scenario) may want to see. Delivered synchronously on the event loop, in order,
/// while it happens; a watcher must not call into the device's Lua state.
public enum RuntimeEvent {
    /// Bytes written to the device console (print, tracebacks, PANIC lines).
    case console([UInt8])
    /// A Lua error was reported (callback or top level), before `--on-error` acts.
    case error(message: String)
    /// A `tmr` timer expired and its callback is about to run.
    case timerFired
    /// The device reboots (`node.restart()`, `--on-error restart`, watchdog).
    case reboot(reason: String)
    /// An MQTT client's connection was accepted by the broker (CONNACK 0). `client`
    /// identifies the Lua `mqtt.Client` across its reconnects.
    case mqttConnected(client: ObjectIdentifier)
    /// An MQTT connect failed (DNS, TCP, TLS or CONNACK refusal) with the firmware's code.
    case mqttConnectFailed(client: ObjectIdentifier, code: Int)
    /// An MQTT connection that was up has ended (the script's `offline` event).
    case mqttOffline(client: ObjectIdentifier)
    /// `m:publish` handed a message to the client.
    case mqttPublished(client: ObjectIdentifier, topic: [UInt8], payloadBytes: Int, qos: UInt8, retain: Bool)
    /// A message arrived for the script.
    case mqttReceived(client: ObjectIdentifier, topic: [UInt8], payloadBytes: Int)
    /// A `--strict` finding (one line, `file:line: text`).
    case portability(String)
}

extension Runtime {
    /// Calls `handler` with every `RuntimeEvent` from now on, for the rest of the process
    /// (across simulated reboots).
    public func observe(_ handler: @escaping (RuntimeEvent) -> Void) {
        observers.append(handler)
    }

    /// Delivers `event` to the observers.
    public func emit(_ event: RuntimeEvent) {
        for observer in observers { observer(event) }
    }

    /// The highest heap share the script held in any boot of this run (bytes; counted
    /// from the end of the host's setup, see `LuaState.setHeapBudget`).
    public var heapPeak: Int {
        max(heapPeakOfEarlierBoots, vm.isClosed ? 0 : lua.heapStatus.peak)
    }

    /// Keeps the current boot's peak before its state is closed.
    func noteHeapPeak() {
        guard !vm.isClosed else { return }
        heapPeakOfEarlierBoots = max(heapPeakOfEarlierBoots, lua.heapStatus.peak)
    }
}
