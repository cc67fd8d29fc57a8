import NIOCore

/// The board's 13 GPIO pins (NodeMCU's D0–D12 numbering, 0…12): each pin's mode and
/// pull-up as the firmware set them, the level the firmware last wrote, and the level
/// the outside world drives onto it.
///
/// What a read returns: an output (or open-drain) pin reads its written level; an input
/// reads the level driven from outside if any, else 1 with the pull-up on, else the
/// last level written (0 after boot), as main spec §5.5 says.
///
/// `drive(_:_:)` is how the world (the `--board` file, tests, scenarios) changes an
/// input; when that changes what the pin reads, `onEdge` subscribers hear of it
/// (the gpio module turns it into `gpio.trig` callbacks).
public final class GPIOBank {
    /// Valid pin numbers.
    public static let pins = 0...12

    /// Pin modes with the firmware's numbers (`gpio.INPUT` …).
    public enum Mode: Int, Sendable {
        case input = 0
        case output = 1
        case interrupt = 2
        case openDrain = 3
    }

    /// One pin's state.
    public struct Pin: Sendable, Equatable {
        public var mode: Mode = .input
        public var pullUp = false
        /// Last level the firmware wrote (0 after boot).
        public var written = 0
        /// Level the outside world drives, or nil when nothing drives the pin.
        public var driven: Int?
    }

    /// A level the firmware put on a pin (for scenarios and tests).
    public struct Output: Sendable, Equatable {
        public var pin: Int
        public var level: Int
        /// Device time of the write.
        public var at: NIODeadline
    }

    let clock: DeviceClock
    weak var board: Board?
    public private(set) var state = Array(repeating: Pin(), count: 13)
    /// Every write, in order: the last `outputLimit`.
    public var outputs: [Output] { Array(writeLog.suffix(Self.outputLimit)) }
    public static let outputLimit = 10_000
    /// `outputs` and up to as many older writes: trimmed in batches, because dropping the
    /// oldest at every write moved the whole log each time (a bit-banging script or a
    /// synchronous `gpio.serout` writes millions of times).
    private var writeLog: [Output] = []

    /// Subscribers to changes of a pin's read level caused from outside: `(pin, level)`.
    /// The gpio module subscribes once per boot (the key names the subscriber).
    private var edgeObservers: [String: (Int, Int) -> Void] = [:]
    /// Subscribers to firmware writes: `(pin, level)`.
    private var outputObservers: [String: (Int, Int) -> Void] = [:]

    init(clock: DeviceClock) { self.clock = clock }

    public func observeEdges(_ key: String, _ body: ((Int, Int) -> Void)?) { edgeObservers[key] = body }
    public func observeOutputs(_ key: String, _ body: ((Int, Int) -> Void)?) { outputObservers[key] = body }

    /// Whether `pin` exists.
    public static func exists(_ pin: Int) -> Bool { pins.contains(pin) }

    public func pin(_ pin: Int) -> Pin { state[pin] }

    /// What `gpio.read(pin)` returns.
    public func read(_ pin: Int) -> Int {
        let p = state[pin]
        switch p.mode {
        case .output: return p.written
        case .openDrain: return p.written == 0 ? 0 : (p.driven ?? 1)
        case .input, .interrupt: return p.driven ?? (p.pullUp ? 1 : p.written)
        }
    }

    /// The firmware sets a pin's mode (`gpio.mode`).
    public func setMode(_ pin: Int, _ mode: Mode, pullUp: Bool = false) {
        state[pin].mode = mode
        state[pin].pullUp = pullUp
    }

    /// The firmware writes a level (`gpio.write`, `gpio.serout`).
    public func write(_ pin: Int, _ level: Int) {
        state[pin].written = level
        writeLog.append(Output(pin: pin, level: level, at: clock.now))
        if writeLog.count >= 2 * Self.outputLimit { writeLog.removeFirst(writeLog.count - Self.outputLimit) }
        for observer in outputObservers.values { observer(pin, level) }
    }

    /// The world drives `level` (0 or 1) onto `pin`, or stops driving it (nil). If what
    /// the pin reads changes, edge subscribers hear of it.
    public func drive(_ pin: Int, _ level: Int?) {
        precondition(Self.exists(pin), "gpio \(pin) does not exist")
        let before = read(pin)
        state[pin].driven = level.map { $0 == 0 ? 0 : 1 }
        let after = read(pin)
        if after != before {
            for observer in edgeObservers.values { observer(pin, after) }
        }
    }

    /// Drives `level` onto `pin` after `delay` of device time (pending board work).
    @discardableResult
    public func drive(_ pin: Int, _ level: Int?, after delay: TimeAmount) -> BoardTask? {
        board?.schedule(in: delay) { [weak self] in self?.drive(pin, level) }
    }

    /// A reboot: the firmware's settings go, the world's drive levels stay.
    func reboot() {
        for index in state.indices {
            state[index] = Pin(driven: state[index].driven)
        }
    }
}
