import Board
import HostNet
import LuaBridge
import MQTT
import NIOCore

/// Something that keeps the process alive and must be torn down on a simulated
/// reboot (an armed timer, a connecting or connected client, an open socket).
public protocol RuntimeHandle: AnyObject {
    /// Tears the handle down without any Lua callback (device reboot: no MQTT
    /// DISCONNECT, so brokers publish wills).
    func abortForReboot()
}

/// Where an error in a Lua callback came from; decides how it is printed (spec §1.3).
public enum CallbackKind: Sendable {
    /// mqtt, net, tls: a PANIC line in both profiles.
    case network
    /// tmr, wifi, gpio, node.task, file: 3.0 passes a traceback to `node.setonerror`.
    case task
}

/// One Lua interpreter on one event loop: the modules, the handle count that
/// decides when the process ends, and the error policy.
///
/// Used only on its event loop (bridge rule 3); nothing here is thread-safe.
public final class Runtime {
    public let eventLoop: EventLoop
    public let options: RuntimeOptions
    public var profile: FirmwareProfile { options.profile }
    /// The one clock: `tmr`, keepalives and timeouts read it (DESIGN.md, "Time").
    public let clock: DeviceClock
    /// The simulated hardware; lives across simulated reboots, as the board does.
    public let board: Board

    /// Every socket of this runtime goes through it (clock, remap, capture, flushes).
    public let network: HostNetwork

    /// The current interpreter; replaced on every simulated reboot.
    @exclusivity(unchecked) public private(set) var vm: LuaVM
    public var lua: LuaState { vm.state }

    /// Increments on every reboot: work scheduled for an older boot is dropped.
    @exclusivity(unchecked) public private(set) var generation = 0
    /// Process start or the last simulated reboot (`tmr.now`, `tmr.time`).
    @exclusivity(unchecked) public private(set) var bootTime: NIODeadline
    /// `node.bootreason()`'s extended reason: 0 power-on, 4 software restart, 3 software
    /// watchdog reset, 5 deep-sleep wake.
    @exclusivity(unchecked) public private(set) var bootReason = 0

    @exclusivity(unchecked) private var handles: [ObjectIdentifier: RuntimeHandle] = [:]
    /// Keep-alive reasons that are not objects (the REPL until end of input).
    @exclusivity(unchecked) private var pins = 0
    @exclusivity(unchecked) private var idleCheckPending = false
    /// Set once the process is ending or rebooting: nothing else may run.
    @exclusivity(unchecked) public private(set) var halted = false
    @exclusivity(unchecked) private var finished = false
    private var restartTimes: [NIODeadline] = []
    private var nextBootReason = 4
    private let exitPromise: EventLoopPromise<Int32>
    private var boot: (Runtime) -> Void = { _ in }

    /// Per-boot state modules keep (timers, registered metatables, …).
    @exclusivity(unchecked) public var modules = ModuleRegistry()
    /// `node.setonerror(fn)` handler (3.0), kept as a registry ref.
    public var errorHandler: LuaRef?
    /// Receives device-console output instead of stdout (tests).
    @exclusivity(unchecked) public var consoleSink: ((UnsafeRawBufferPointer) -> Void)?
    /// `node.output`'s redirection for this boot: takes every console write (print,
    /// REPL results, error reports) instead of the serial port; nil = serial.
    public var consoleRedirect: ((UnsafeRawBufferPointer) -> Void)?
    /// The firmware's task queues (`node.task.post`, `node.input`, pipe readers).
    public private(set) lazy var tasks = TaskQueue(runtime: self)
    /// UART 0's receive side: standard input, for the REPL and `uart.on("data")`.
    public private(set) lazy var console = ConsoleInput(runtime: self)
    /// What survives a simulated reboot as the device's flash and SDK settings do
    /// (CPU frequency, flash size, partition table, startup record).
    public let device = DeviceSettings()
    /// The prelude's `host` table (its `pieces` flag makes `print` write piece by piece).
    public var preludeHost: LuaRef?
    /// Nonzero while Lua's `print` writes (the prelude's write primitive runs), so a
    /// failing 2.2 `node.output` function can raise into the code that printed.
    public var luaWriteDepth = 0
    /// The error of a 2.2 `node.output` function, for the write primitive to raise.
    public var outputError: LuaCallError?

    public func takeOutputError() -> LuaCallError? {
        defer { outputError = nil }
        return outputError
    }

    /// The device's outgoing MQTT queues, all clients together (bounded; see
    /// `RuntimeOptions.mqttQueueLimit`). A later `--heap` model sets its hooks.
    public let mqttQueueBudget: MQTTQueueBudget

    /// Quirk warnings already printed (one per call site per run, spec §0.3).
    @exclusivity(unchecked) public var quirkWarnings = QuirkWarnings()

    /// Watchers of what the device does (`observe(_:)`, `Runtime+Observers.swift`).
    var observers: [(RuntimeEvent) -> Void] = []
    /// The highest script heap share of any boot so far (`heapPeak`).
    var heapPeakOfEarlierBoots = 0
    /// `--strict` findings, one line each (`PortabilityCheck`).
    public internal(set) var portabilityFindings: [String] = []

    /// The exit status, once the process should end.
    public var exitStatus: EventLoopFuture<Int32> { exitPromise.futureResult }

    public init(eventLoop: EventLoop, options: RuntimeOptions) {
        eventLoop.preconditionInEventLoop()
        self.eventLoop = eventLoop
        self.options = options
        self.exitPromise = eventLoop.makePromise()
        self.clock = DeviceClock(eventLoop: eventLoop, mode: options.clockMode)
        self.bootTime = clock.now
        self.board = Board(clock: clock, chipID: options.chipID, settings: options.board)
        self.vm = LuaVM(compactHeap: options.compactLuaHeap)
        self.mqttQueueBudget = MQTTQueueBudget(
            limit: options.mqttQueueLimit, highWater: options.mqttQueueHighWater
        ) { [prefix = options.diagnosticPrefix] used, limit in
            Console.diagnostic(prefix + "mqtt: outgoing queues hold \(used) bytes (high-water mark; at \(limit) bytes m:publish returns false): is the broker acknowledging?")
        }
        self.network = HostNetwork(
            eventLoop: eventLoop, clock: clock,
            configuration: .init(
                remap: options.remap, expose: options.expose, busyPollWindow: options.busyPollWindow,
                defaultTLS: TLSSettings(additionalTrustRootsPEM: options.extraCAPEM)),
            capture: options.pcapPath.flatMap { path in
                do {
                    return try PacketCapture(path: path)
                } catch {
                    Console.diagnostic(options.diagnosticPrefix + "--pcap \(path): cannot write the file (\(error))")
                    return nil
                }
            },
            diagnostics: { [prefix = options.diagnosticPrefix] in Console.diagnostic(prefix + $0) })
        if options.heapLimit != nil {
            // The device's MQTT queues live in its heap: under --heap they count against it.
            mqttQueueBudget.externalAdmission = { [unowned self] bytes in
                let status = lua.heapStatus
                guard let limit = status.limit else { return true }
                return status.used + bytes <= limit
            }
            mqttQueueBudget.onChange = { [unowned self] delta in
                if delta > 0 { _ = lua.chargeHeap(delta) } else { lua.creditHeap(-delta) }
            }
        }
    }

    // MARK: Boot

    /// Boots the interpreter and runs `body` (the script, `-e` chunks, …) in it;
    /// `body` runs again after every simulated reboot.
    public func start(_ body: @escaping (Runtime) -> Void) {
        boot = body
        board.onSettled = { [unowned self] in scheduleIdleCheck() }
        board.boot(.power)
        prepareInterpreter()
        body(self)
        scheduleIdleCheck()
    }

    private func prepareInterpreter() {
        lua.setWatchdog(timeout: options.watchdogTimeout?.nanoseconds)
        vm.openStandardLibraries()
        FlashFileSystem(for: options).installLoaderPaths(in: lua)
        Prelude.install(in: self)
        modules.installAll(in: self)
        if options.strict { PortabilityCheck.install(in: self) }
        // The setup's garbage (the prelude's main chunk, …) goes now, not at some later
        // cycle of the script's: a fleet keeps thousands of these heaps.
        _ = lua.getGlobal("collectgarbage")
        _ = lua.pcall(arguments: 0, results: 0)
        // From here on the script's allocations count (`--heap`).
        lua.setHeapBudget(options.heapLimit)
    }

    // MARK: Handles and exit-when-idle

    /// `handle` now keeps the process alive (idempotent).
    public func retain(_ handle: RuntimeHandle) {
        handles[ObjectIdentifier(handle)] = handle
    }

    /// `handle` no longer keeps the process alive; exit is checked on a later tick.
    public func release(_ handle: RuntimeHandle) {
        if handles.removeValue(forKey: ObjectIdentifier(handle)) != nil { scheduleIdleCheck() }
    }

    /// Keeps the process alive without an object (the REPL while it reads input).
    public func pin() { pins += 1 }
    public func unpin() {
        pins -= 1
        scheduleIdleCheck()
    }

    /// Idle: no handle, no pin, and no board work to come (a scheduled edge or Wi-Fi
    /// association step can still produce a callback).
    public var isIdle: Bool { handles.isEmpty && pins == 0 && !board.hasPendingEvents }

    /// Checks for idleness on a later tick, so a callback that re-arms a timer or
    /// reconnects does not end the process. Nothing to check while a handle or pin
    /// remains: whatever releases the last one calls this again.
    public func scheduleIdleCheck() {
        guard isIdle, !idleCheckPending, !finished else { return }
        idleCheckPending = true
        eventLoop.assumeIsolated().execute {
            self.idleCheckPending = false
            if self.isIdle && !self.halted { self.finish(status: 0) }
        }
    }

    /// Ends the run with `status`: nothing else runs; once any running Lua has
    /// unwound, the interpreter is closed (running every `__gc`) and the exit
    /// status is delivered.
    public func finish(status: Int32) {
        guard !finished else { return }
        finished = true
        halted = true
        abortAllHandles()
        eventLoop.assumeIsolated().execute {
            self.noteHeapPeak()
            self.vm.close()
            self.exitPromise.succeed(status)
        }
    }

    public var isFinished: Bool { finished }

    private func abortAllHandles() {
        let all = handles.values
        handles.removeAll()
        for handle in all { handle.abortForReboot() }
    }

    // MARK: Running Lua

    /// Whether work scheduled for boot `generation` may still touch Lua.
    public func isCurrent(_ generation: Int) -> Bool { !halted && generation == self.generation }

    /// Calls the function below `arguments` values as a callback of `kind`:
    /// protected, errors reported per profile and then handled per `--on-error`.
    /// Returns false if the callback failed.
    @discardableResult
    public func callback(_ kind: CallbackKind, arguments: Int32) -> Bool {
        protectedCall(arguments: arguments) { reportCallbackError($0, kind: kind) }
    }

    /// Calls the function below `arguments` values; an error goes to `report` (which may
    /// end the process) before the idle check is scheduled. Returns false on error.
    func protectedCall(arguments: Int32, report: (LuaCallError) -> Void) -> Bool {
        switch lua.pcall(arguments: arguments, results: 0) {
        case .ok:
            scheduleIdleCheck()
            return true
        case .error(let error):
            // After `finish` (fleet mode's os.exit) the unwinding error is not reported.
            if !finished { report(error) }
            scheduleIdleCheck()
            return false
        }
    }

    /// Prints a callback error as the device does, then applies `--on-error`.
    public func reportCallbackError(_ error: LuaCallError, kind: CallbackKind) {
        if handleTrip(error) { return }
        emit(.error(message: error.message))
        if profile == .v3_0 && kind == .task {
            if let handler = errorHandler {
                // A script-installed handler takes the traceback; the device does
                // not reboot then, so neither does the host.
                lua.push(handler)
                lua.push(error.traceback)
                if case .error(let nested) = lua.pcall(arguments: 1, results: 0) {
                    if handleTrip(nested) { return }
                    print("PANIC: unprotected error in call to Lua API (\(nested.message))")
                    applyErrorPolicy()
                }
                return
            }
            print(error.traceback)
        } else {
            print("PANIC: unprotected error in call to Lua API (\(error.message))")
        }
        applyErrorPolicy()
    }

    /// Reports an error of the script's top level or a REPL line (spec §1.4).
    /// `applyPolicy` false: printed only (a line fed by `node.input`, which the device
    /// reports and forgets, whatever `--on-error` says about the script's own errors).
    public func reportTopLevelError(_ error: LuaCallError, repl: Bool, applyPolicy: Bool = true) {
        if handleTrip(error) { return }
        emit(.error(message: error.message))
        switch (profile, repl) {
        case (.v2_2, false): print("lua: " + error.traceback)
        case (.v2_2, true): print(error.traceback)
        case (.v3_0, false): print(error.traceback)
        case (.v3_0, true): print("Lua error: " + error.traceback)
        }
        if applyPolicy { applyErrorPolicy() }
    }

    /// Acts on `--on-error` after an error has been printed.
    public func applyErrorPolicy() {
        switch options.onError {
        case .continue: return
        case .exit: finish(status: 1)
        case .restart: reboot(reason: "a Lua error")
        }
    }

    /// Writes one host diagnostic line about this runtime to stderr (prefixed in fleet mode).
    public func diagnostic(_ text: String) {
        Console.diagnostic(options.diagnosticPrefix + text)
    }

    /// Writes a line to the device console.
    public func print(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { consoleWrite(UnsafeRawBufferPointer($0)) }
    }

    /// Device-console output: `node.output`'s function when one is set, else the serial port.
    public func consoleWrite(_ bytes: UnsafeRawBufferPointer) {
        if !observers.isEmpty { emit(.console(Array(bytes))) }
        if let consoleRedirect { consoleRedirect(bytes) } else { serialWrite(bytes) }
    }

    /// UART 0's transmit side: stdout, or the sink when one is set (`uart.write`, and
    /// console writes not redirected by `node.output`).
    public func serialWrite(_ bytes: UnsafeRawBufferPointer) {
        if let consoleSink { consoleSink(bytes) } else { Console.out(bytes) }
    }

    // MARK: Watchdog and Ctrl-C

    /// The device watchdog's timeout when nothing else is configured: about 3.2 s.
    ///
    /// The ESP8266 has two watchdogs: the SDK's software watchdog, fed whenever the SDK
    /// gets the CPU back between tasks (and by `system_soft_wdt_feed`, which is what
    /// NodeMCU's `tmr.wdclr()` calls: app/modules/tmr.c), and the hardware watchdog behind
    /// it. Lua that loops with interrupts enabled meets the software one first. Espressif
    /// does not document its period; measurements published for the non-OS SDK (e.g.
    /// sigmdel.ca, "ESP8266 Watchdogs in Arduino", §4 "ESP8266 Watchdog Timeouts") put it
    /// at about 3.2 s, the hardware watchdog's at several seconds more. `--watchdog`
    /// changes it.
    public static let deviceWatchdogTimeout: TimeAmount = .milliseconds(3200)

    /// What the ESP8266 boot ROM prints after a software watchdog reset (74880 baud):
    /// reset cause 2; seen on every such reset, e.g. in the esp8266.com forum thread
    /// "ESP8266 - Soft WDT reset" (t=22582). Boot mode (3,6) is a normal flash boot.
    public static let watchdogResetMessage = " ets Jan  8 2013,rst cause:2, boot mode:(3,6)\n"

    /// `node.bootreason()` after a software watchdog reset: raw code 2 (the ROM's
    /// "rst cause:2"), extended reason 3 = REASON_SOFT_WDT_RST (NodeMCU docs/modules/node.md,
    /// "3, software watchdog reset").
    public static let watchdogBootReason = 3

    /// A protected call that the watchdog or Ctrl-C ended: act on it and return true.
    private func handleTrip(_ error: LuaCallError) -> Bool {
        switch error.trip {
        case .none:
            return false
        case .interrupt:
            // Ctrl-C in the REPL: the chunk is abandoned, the REPL goes on.
            print("interrupted!")
            return true
        case .watchdog:
            watchdogReset()
            return true
        }
    }

    /// The device's watchdog reset: the ROM's reset message on the console, then a
    /// simulated reboot with the watchdog's boot reason. Under `--on-error exit` the run
    /// ends there (status 1) instead: the reboot would run the same runaway code again.
    public func watchdogReset() {
        guard !halted else { return }
        print(Self.watchdogResetMessage)
        let seconds = Double((options.watchdogTimeout ?? .zero).nanoseconds) / 1e9
        diagnostic("watchdog reset: Lua ran for \(seconds) s without returning to the event loop (tmr.wdclr() feeds the watchdog)")
        if options.onError == .exit {
            finish(status: 1)
        } else {
            reboot(reason: "watchdog reset", bootReason: Self.watchdogBootReason)
        }
    }

    // MARK: Simulated reboot (spec §1.3 rule 4)

    /// Reboots like the device: after the running Lua has unwound, every handle is
    /// torn down abruptly, the interpreter is replaced and the script runs again.
    /// `kind` says what survives on the board (the RTC only across `rtctime.dsleep`).
    /// `bootReason` is what `node.bootreason()` reports afterwards (default: 5 after a
    /// deep-sleep wake, else 4, a software restart). With `after`, the device sleeps
    /// first (`rtctime.dsleep`): every handle is torn down at once and the boot follows
    /// that much device time later.
    public func reboot(
        reason: String, kind: Board.BootKind = .restart, bootReason: Int? = nil, after delay: TimeAmount = .zero
    ) {
        guard !halted else { return }
        nextBootReason = bootReason ?? (kind == .rtcDeepSleepWake ? 5 : 4)
        halted = true
        let now = clock.now
        restartTimes.append(now)
        restartTimes.removeAll { now - $0 > .seconds(options.restartWindowSeconds) }
        if restartTimes.count > options.maxRestarts {
            diagnostic("giving up after \(options.maxRestarts) restarts within \(options.restartWindowSeconds) seconds (the last one after \(reason))")
            halted = false
            finish(status: 1)
            return
        }
        diagnostic("restarting (\(reason))")
        emit(.reboot(reason: reason))
        if delay > .zero {
            abortAllHandles()
            clock.schedule(in: delay) { self.performReboot(kind: kind) }
            return
        }
        eventLoop.assumeIsolated().execute { self.performReboot(kind: kind) }
    }

    /// `node.dsleep(us)`: the device sleeps (nothing runs, every handle is torn down) and
    /// wakes after `microseconds` of device time with boot reason 5; 0 sleeps until a
    /// reset that never comes on the host, so the process ends with status 0.
    public func deepSleep(microseconds: Int64) {
        guard !halted else { return }
        if microseconds <= 0 {
            diagnostic("node.dsleep(0): the device sleeps until reset; ending")
            finish(status: 0)
            return
        }
        halted = true
        let generation = self.generation
        eventLoop.assumeIsolated().execute { self.abortAllHandles() }
        _ = clock.schedule(in: .microseconds(microseconds)) { [weak self] in
            guard let self, !self.finished, self.generation == generation else { return }
            self.halted = false
            self.reboot(reason: "waking from deep sleep", bootReason: 5)
        }
    }

    private func performReboot(kind: Board.BootKind) {
        abortAllHandles()
        generation += 1
        errorHandler = nil
        consoleRedirect = nil
        preludeHost = nil
        console.resetForReboot()
        // Close first: the __gc of every object still calls into its module.
        noteHeapPeak()
        vm.close()
        modules = ModuleRegistry()
        vm = LuaVM(compactHeap: options.compactLuaHeap)
        bootTime = clock.now
        bootReason = nextBootReason
        halted = false
        board.boot(kind)
        prepareInterpreter()
        boot(self)
        scheduleIdleCheck()
    }
}
