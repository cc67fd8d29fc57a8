import Board
import HostNet
import LuaBridge
import MQTT
import NIOCore
import NodeMCU

/// `--scenario FILE.lua`: a host-side Lua script that drives one device run. It lives in
/// its own Lua state (never the device's), on the runtime's event loop and device clock:
/// it changes the simulated board, injects network faults through the runtime's
/// `HostNetwork` (`FaultInjector`), watches gpio writes, console lines and — through an
/// MQTT client of its own on the broker the device uses — what reaches the broker, and
/// ends the run: `done()` with status 0, a failed expectation or a scenario error with
/// status `ScenarioRunner.failureStatus` and a message naming the device time.
///
/// The Lua API (documented in README, "Scenarios") is written in Lua on top of a few
/// primitives (`ScenarioPrelude`); this type provides the primitives and feeds events in.
///
/// Use only on the runtime's event loop.
public final class ScenarioRunner {
    /// The exit status of a run a scenario failed.
    public static let failureStatus: Int32 = 3

    let runtime: Runtime
    let chunk: Chunk
    let vm = LuaVM()
    let faults: FaultInjector
    /// Device time zero: the device's power-on.
    let origin: NIODeadline
    /// The Lua dispatcher of the prelude, called for every event.
    var dispatcher: LuaRef?
    var timers: [Int: BoardTask] = [:]
    var nextTimer = 1
    var ended = false
    var loaded = false
    var needsBroker: String?
    /// The scenario's MQTT client and where it connects (`broker(...)`).
    var broker: (host: String, port: Int)?
    /// `broker(addr, {tls=, user=, password=, client_id=})`.
    var brokerTLS = false
    var brokerUser: [UInt8]?
    var brokerPassword: [UInt8]?
    var brokerClientID: [UInt8]?
    var client: MQTTClient?
    var clientNetwork: HostNetwork?
    var clientReady = false
    var startDevice: (() -> Void)?
    var consoleLine: [UInt8] = []
    /// Virtual time: the sync barrier through the broker (see `beginSync`).
    var syncOperation: NetworkOperation?
    var syncAgain = false
    var syncToken = 0
    lazy var syncTopic: [UInt8] = Array("nodemcu-host/scenario-sync/\(Self.processID)".utf8)

    /// A scenario for `runtime`, from `code` (chunk name `@FILE`).
    public init(runtime: Runtime, name: String, code: [UInt8]) {
        self.runtime = runtime
        self.chunk = Chunk(name: "@" + name, code: code)
        self.faults = FaultInjector(clock: runtime.clock)
        self.origin = runtime.bootTime
    }

    /// Loads and runs the scenario's top level, hooks it to the board, the console and
    /// the network, connects its MQTT client if it named a broker, and then calls
    /// `startDevice` (once the client's subscription is in place, so that nothing the
    /// device publishes is missed). A load error ends the run.
    public func start(startDevice: @escaping () -> Void) {
        self.startDevice = startDevice
        runtime.network.faults = faults
        faults.onEvent = { [unowned self] line in if runtime.options.trace { log("fault: " + line) } }
        runtime.board.gpio.observeOutputs("scenario") { [unowned self] pin, level in
            dispatchLater("gpio") { lua in
                lua.push(pin)
                lua.push(level)
                return 2
            }
        }
        let previousSink = runtime.consoleSink
        runtime.consoleSink = { [unowned self] bytes in
            if let previousSink { previousSink(bytes) } else { Console.out(bytes) }
            consoleReceived(bytes)
        }
        _ = runtime.exitStatus.assumeIsolated().map { [self] _ in shutDown() }

        vm.openStandardLibraries()
        let lua = vm.state
        guard lua.load(ScenarioPrelude.code, chunkName: "=scenario prelude") == nil else {
            fatalError("nodemcu-host: the scenario prelude does not load")
        }
        pushPrimitives(on: lua)
        switch lua.pcall(arguments: 1, results: 1) {
        case .ok:
            dispatcher = lua.ref()
        case .error(let error):
            fatalError("nodemcu-host: the scenario prelude fails: \(error.traceback)")
        }
        if let message = lua.load(chunk.code, chunkName: chunk.name) {
            end(status: Self.failureStatus, message: "scenario: \(message)")
            return
        }
        if case .error(let error) = lua.pcall(arguments: 0, results: 0) {
            end(status: Self.failureStatus, message: "scenario error: \(error.traceback)")
            return
        }
        loaded = true
        if let needsBroker, broker == nil {
            end(status: Self.failureStatus,
                message: "scenario: \(needsBroker) needs the broker: call broker(\"host:port\") (as the device script names it)")
            return
        }
        if broker != nil {
            if runtime.clock.isVirtual {
                faults.onOutboundFlush = { [unowned self] _ in beginSync() }
            }
            connectClient()
        } else {
            bootDevice()
        }
    }

    // MARK: Virtual time and the broker

    /// Under `--virtual-time`, time may jump as soon as the device has nothing
    /// outstanding, which a QoS 0 publish on its way through the broker to the scenario's
    /// client is not. So whenever the device hands bytes to a connection (and after each
    /// `publish` of the scenario), the scenario holds a network operation of the clock
    /// until a message of its own, published behind them, has come back from the broker:
    /// what the device sent before it has then been delivered (mosquitto handles clients
    /// in order on one thread).
    func beginSync() {
        guard runtime.clock.isVirtual, client != nil else { return }
        if syncOperation?.isActive == true {
            syncAgain = true
            return
        }
        if syncOperation == nil { syncOperation = runtime.clock.makeNetworkOperation() }
        syncOperation?.isActive = true
        // After the flush that called this has completed.
        runtime.eventLoop.assumeIsolated().execute { [self] in sendSync() }
    }

    private func sendSync() {
        guard let client, clientReady, !ended else {
            syncOperation?.isActive = false
            return
        }
        syncToken += 1
        do {
            try client.publish(topic: syncTopic, payload: Array(String(syncToken).utf8), qos: 0, retain: false)
        } catch {
            syncOperation?.isActive = false
        }
    }

    private func syncArrived(_ payload: [UInt8]) {
        guard payload == Array(String(syncToken).utf8) else { return }
        syncOperation?.isActive = false
        if syncAgain {
            syncAgain = false
            beginSync()
        }
    }

    private func bootDevice() {
        guard !ended, let startDevice else { return }
        self.startDevice = nil
        startDevice()
    }

    // MARK: Time

    /// Device time in milliseconds since power-on.
    var nowMilliseconds: Double {
        Double((runtime.clock.now - origin).nanoseconds) / 1e6
    }

    func timeText(_ milliseconds: Double? = nil) -> String {
        let ms = milliseconds ?? nowMilliseconds
        let whole = Int(ms.rounded())
        let fraction = String(whole % 1000)
        return "\(whole / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction) s"
    }

    func log(_ text: String) {
        Console.diagnostic("scenario \(timeText()): \(text)")
    }

    // MARK: Ending

    /// Ends the run once: the message (if any) on stderr, then the runtime finishes.
    func end(status: Int32, message: String?) {
        guard !ended else { return }
        ended = true
        if let message { Console.diagnostic(message) }
        runtime.finish(status: status)
    }

    private func shutDown() {
        ended = true
        for task in timers.values { task.cancel() }
        timers.removeAll()
        client?.abort()
        client = nil
        syncOperation?.isActive = false
        runtime.board.gpio.observeOutputs("scenario", nil)
        vm.close()
    }

    // MARK: Events into Lua

    /// Calls the prelude's dispatcher with the event `kind` and what `arguments` pushes.
    func dispatch(_ kind: String, _ arguments: (LuaState) -> Int32 = { _ in 0 }) {
        guard !ended, loaded || kind == "timer" || kind == "run_end", let dispatcher, !vm.isClosed else { return }
        let lua = vm.state
        lua.push(dispatcher)
        lua.push(kind)
        let count = arguments(lua)
        if case .error(let error) = lua.pcall(arguments: 1 + count, results: 0), !ended {
            end(status: Self.failureStatus, message: "scenario error at \(timeText()): \(error.traceback)")
        }
    }

    /// `dispatch` on a later loop tick, in order: what the device does (a gpio write, a
    /// print) reaches the scenario after the device's call has returned, so a scenario
    /// reacting with a board input (an edge that runs a `gpio.trig` callback) never
    /// runs device code inside the device's own API call.
    func dispatchLater(_ kind: String, _ arguments: @escaping (LuaState) -> Int32) {
        runtime.eventLoop.assumeIsolated().execute { [self] in dispatch(kind, arguments) }
    }

    private func consoleReceived(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            if byte == 0x0A {
                var line = consoleLine
                consoleLine = []
                if line.last == 0x0D { line.removeLast() }
                dispatchLater("console") { lua in
                    lua.push(line)
                    return 1
                }
            } else {
                consoleLine.append(byte)
            }
        }
    }

    // MARK: The scenario's MQTT client

    private func connectClient() {
        guard let broker else { return }
        let network = HostNetwork(
            eventLoop: runtime.eventLoop, clock: runtime.clock,
            configuration: .init(remap: runtime.options.remap))
        clientNetwork = network
        let client = MQTTClient(network: network)
        self.client = client
        client.eventHandler = { [unowned self] event in clientEvent(event) }
        do {
            // TLS as the device's connections: the --cafile trust (else the system store).
            try client.connect(
                host: broker.host, port: broker.port,
                tls: brokerTLS ? runtime.network.configuration.defaultTLS : nil,
                options: MQTTConnectOptions(
                    clientID: brokerClientID ?? Array("nodemcu-host-scenario-\(Self.processID)".utf8), keepAlive: 60,
                    username: brokerUser, password: brokerPassword))
        } catch {
            end(status: Self.failureStatus, message: "scenario: cannot connect to the broker: \(error)")
        }
    }

    private static let processID = Int(getpid())

    private func clientEvent(_ event: MQTTClientEvent) {
        guard let client, !ended else { return }
        switch event {
        case .connected:
            _ = try? client.subscribe([.init(topicFilter: Array("#".utf8), qos: 1)])
        case .subscribed:
            clientReady = true
            bootDevice()
        case .connectFailed(let failure):
            let name = broker.map { "\($0.host):\($0.port)" } ?? "?"
            end(status: Self.failureStatus,
                message: "scenario: cannot connect to the broker \(name): \(failure.reason ?? "code \(failure.code)")")
        case .message(let message):
            // Retained messages from before the run are not something the device did.
            guard !message.retain else { return }
            let topic = Array(message.topic.readableBytesView)
            let payload = Array(message.payload.readableBytesView)
            if topic == syncTopic {
                syncArrived(payload)
                return
            }
            dispatch("publish") { lua in
                lua.push(topic)
                lua.push(payload)
                return 2
            }
        case .closed(let cause):
            if clientReady { log("the scenario's MQTT client lost the broker (\(cause))") }
            clientReady = false
            syncOperation?.isActive = false
        default:
            break
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension ScenarioRunner {
    /// Boots `runtime` with `startDevice`, through a scenario (name, code) if one is given.
    /// Returns the runner (nil without a scenario).
    @discardableResult
    public static func boot(
        _ runtime: Runtime, scenario: (name: String, code: [UInt8])?, startDevice: @escaping () -> Void
    ) -> ScenarioRunner? {
        guard let scenario else {
            startDevice()
            return nil
        }
        let runner = ScenarioRunner(runtime: runtime, name: scenario.name, code: scenario.code)
        runner.start(startDevice: startDevice)
        return runner
    }

    /// The run is being ended from outside (`--run-for`): an expectation still waiting
    /// fails it.
    public func runEnding() {
        dispatch("run_end")
    }
}
