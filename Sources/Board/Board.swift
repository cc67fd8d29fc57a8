import NIOCore

/// The simulated ESP8266 board around the script: pins, ADC, DHT sensors, PWM, the RTC
/// and the Wi-Fi radio. No Lua and no network here: the firmware modules read and
/// change this state, and everything a script can read can be set from outside it (the
/// `--board` file through `BoardSettings`, tests and, later, the scenario language
/// through this Swift API).
///
/// One board lives for the whole process: it survives simulated reboots the way the
/// hardware does (pin levels the world drives, the ADC init byte in flash, the Wi-Fi
/// configuration saved in flash; the RTC only across `rtctime.dsleep`).
///
/// Work the board schedules itself (Wi-Fi association steps, edges from the board
/// file) runs on `clock` and counts as pending: the runtime does not end the process
/// while `hasPendingEvents` is true, because such work can still produce a callback.
/// Work scheduled with a `keepsAlive` test counts only while the test says someone
/// listens (the boot-time Wi-Fi association of a script that registered no Wi-Fi
/// callback cannot produce one, so it does not hold a finished script up).
///
/// Use only on the clock's event loop.
public final class Board {
    public let clock: DeviceClock
    public let gpio: GPIOBank
    public let adc: ADCInput
    public let dht: DHTSensors
    public let pwm: PWMController
    public let rtc: RealTimeClock
    public let wifi: WiFiRadio
    public let networkTime: NetworkTime

    /// Called after every piece of board-scheduled work has run or been cancelled, so
    /// the runtime can check whether the process has become idle.
    public var onSettled: (() -> Void)?

    private var pending: [ObjectIdentifier: BoardTask] = [:]

    /// A board with the documented defaults, changed by `settings`.
    public init(clock: DeviceClock, chipID: Int, settings: BoardSettings = BoardSettings()) {
        self.clock = clock
        gpio = GPIOBank(clock: clock)
        adc = ADCInput()
        dht = DHTSensors()
        pwm = PWMController()
        rtc = RealTimeClock(clock: clock)
        wifi = WiFiRadio(chipID: chipID)
        networkTime = NetworkTime()
        gpio.board = self
        wifi.board = self
        settings.apply(to: self)
    }

    /// Whether board-scheduled work is still to come (it may produce callbacks).
    public var hasPendingEvents: Bool { pending.values.contains { $0.keepsAlive?() ?? true } }

    /// Runs `body` after `delay` of device time; pending until it has run or is cancelled.
    @discardableResult
    public func schedule(
        in delay: TimeAmount, keepsAlive: (() -> Bool)? = nil, _ body: @escaping () -> Void
    ) -> BoardTask {
        schedule(at: clock.now + delay, keepsAlive: keepsAlive, body)
    }

    /// Runs `body` once device time reaches `deadline`; pending until then.
    @discardableResult
    public func schedule(
        at deadline: NIODeadline, keepsAlive: (() -> Bool)? = nil, _ body: @escaping () -> Void
    ) -> BoardTask {
        let task = BoardTask()
        task.board = self
        task.keepsAlive = keepsAlive
        pending[ObjectIdentifier(task)] = task
        task.clockTask = clock.schedule(at: deadline) { [weak self, weak task] in
            guard let self, let task, self.pending.removeValue(forKey: ObjectIdentifier(task)) != nil else { return }
            body()
            self.onSettled?()
        }
        return task
    }

    fileprivate func cancel(_ task: BoardTask) {
        task.clockTask?.cancel()
        if pending.removeValue(forKey: ObjectIdentifier(task)) != nil { onSettled?() }
    }

    /// The device (re)boots: `kind` says what survives. Called by the runtime before
    /// the modules are installed, on the first boot too.
    public func boot(_ kind: BootKind) {
        if kind != .power { rtc.reboot(keepingTime: kind == .rtcDeepSleepWake) }
        gpio.reboot()
        adc.reboot()
        pwm.reboot()
        wifi.reboot()
    }

    /// Why the board is booting.
    public enum BootKind: Sendable, Equatable {
        /// Power-on: the process starts.
        case power
        /// Any simulated restart that loses the RTC (node.restart, errors, node.dsleep).
        case restart
        /// The wake from `rtctime.dsleep`: the RTC keeps its time.
        case rtcDeepSleepWake
    }
}

/// Work scheduled by the board; cancel it to keep it from running.
public final class BoardTask {
    fileprivate weak var board: Board?
    fileprivate var clockTask: ClockTask?
    /// Whether the pending task still holds the process up (nil: always).
    fileprivate var keepsAlive: (() -> Bool)?

    public func cancel() { board?.cancel(self) }
}
