import NIOCore

/// The runtime's one clock: `tmr`, MQTT keepalives and every timeout read the time and
/// schedule their work here, never on the wall clock or NIO deadlines directly, so that
/// a script behaves the same whether time is real, accelerated or virtual.
///
/// Instants are `NIODeadline`s on the clock's own time line. In real mode that is the
/// event loop's time (`eventLoop.now`, so an `EmbeddedEventLoop` in tests moves it by
/// hand); accelerated, device time runs `factor` times faster than real time from the
/// moment the clock was made.
///
/// ## Virtual time (`--virtual-time`)
///
/// The clock keeps its own ordered timer queue and device time moves by these rules:
///
/// 1. **Frozen while the host works.** While Lua runs and while loop work is queued,
///    `now` does not move: two reads in one callback give the same instant.
/// 2. **Jumps when idle.** When no timer is due, the loop has settled (`settlePasses`
///    loop iterations with no clock activity: no timer scheduled, cancelled or fired, no
///    network operation begun or ended) and *no network operation is outstanding*, `now`
///    jumps to the earliest timer's deadline and that timer runs.
/// 3. **Flows at real speed while the network is busy.** While at least one network
///    operation is outstanding (`beginNetworkOperation()`: a connect with its DNS lookup
///    and TLS handshake, a DNS lookup alone, an HTTP request until its result is in, an
///    MQTT client awaiting CONNACK, a PUBACK/PUBREC/PUBCOMP,
///    SUBACK, UNSUBACK or PINGRESP, or with packets queued and not yet written), device
///    time runs at 1× real time, so a reply that never comes still meets its timeout —
///    after the real time the device would have waited. When the last one ends, time
///    freezes again and rule 2 applies.
///
/// Open sockets with nothing outstanding do not block jumps: an idle connected MQTT
/// client lets time jump to its next keepalive; the PINGREQ then makes it outstanding
/// and the next jump waits for the PINGRESP. Data that arrives unasked (a message the
/// broker forwards) is delivered whenever it arrives, at the current device time.
///
/// Use only on `eventLoop`.
public final class DeviceClock {
    public enum Mode: Sendable, Equatable {
        /// Device time is the event loop's time.
        case real
        /// Device time runs `factor` times as fast as real time (`--speed N`).
        case accelerated(factor: Double)
        /// Device time jumps to the next timer when nothing else can happen
        /// (`--virtual-time`; see the type's documentation).
        case virtual
    }

    public let eventLoop: any EventLoop
    public let mode: Mode
    /// Real instant at which device time and real time were equal.
    private let origin: NIODeadline

    /// Loop iterations without clock activity before a virtual jump.
    public static let settlePasses = 3

    // Virtual mode. These scalars and `outstandingNetworkOperations` are read and set on
    // the loop only, never across a call out, so they skip the run-time exclusivity
    // check (each MQTT round trip begins and ends network operations: bench/NOTES.md,
    // session 8). `queue` keeps it.
    @exclusivity(unchecked) private var frozenNow: NIODeadline
    /// Real instant from which device time flows (a network operation is outstanding).
    @exclusivity(unchecked) private var flowingSince: NIODeadline?
    private var queue = TimerQueue()
    @exclusivity(unchecked) private var sequence: UInt64 = 0
    @exclusivity(unchecked) private var checkScheduled = false
    @exclusivity(unchecked) private var quietPasses = 0
    @exclusivity(unchecked) private var activity: UInt64 = 0
    @exclusivity(unchecked) private var pump: Scheduled<Void>?

    /// Network operations in progress (see rule 3 in the type's documentation).
    @exclusivity(unchecked) public private(set) var outstandingNetworkOperations = 0
    /// Virtual jumps made so far, and the device time they skipped.
    public private(set) var jumpCount = 0
    public private(set) var skipped: TimeAmount = .zero

    public init(eventLoop: any EventLoop, mode: Mode = .real) {
        if case .accelerated(let factor) = mode {
            precondition(factor > 0 && factor.isFinite, "the speed factor must be a positive number")
        }
        self.eventLoop = eventLoop
        self.mode = mode
        self.origin = eventLoop.now
        self.frozenNow = origin
    }

    public var isVirtual: Bool { mode == .virtual }

    /// The current device time.
    public var now: NIODeadline {
        switch mode {
        case .real:
            return eventLoop.now
        case .accelerated(let factor):
            let elapsed = Double((eventLoop.now - origin).nanoseconds) * factor
            return origin + .nanoseconds(Int64(elapsed))
        case .virtual:
            if let flowingSince { return frozenNow + (eventLoop.now - flowingSince) }
            return frozenNow
        }
    }

    /// Device time elapsed since the clock was made.
    public var elapsed: TimeAmount { now - origin }

    /// Runs `body` on the loop once device time reaches `deadline`.
    @discardableResult
    public func schedule(at deadline: NIODeadline, _ body: @escaping () -> Void) -> ClockTask {
        switch mode {
        case .real, .accelerated:
            let scheduled = eventLoop.assumeIsolated().scheduleTask(deadline: realDeadline(for: deadline), body)
            return ClockTask { scheduled.cancel() }
        case .virtual:
            sequence += 1
            let entry = TimerQueue.Entry(deadline: deadline, sequence: sequence, body: body)
            queue.insert(entry)
            noteActivity()
            return ClockTask { [weak self, weak entry] in
                guard let entry, !entry.cancelled else { return }
                entry.cancelled = true
                self?.noteActivity()
            }
        }
    }

    /// Runs `body` on the loop after `delay` of device time.
    @discardableResult
    public func schedule(in delay: TimeAmount, _ body: @escaping () -> Void) -> ClockTask {
        schedule(at: now + delay, body)
    }

    /// Device time spent busy (`tmr.delay`): in virtual mode `now` moves on by `amount`
    /// (timers that became due run afterwards, as on the device); otherwise the caller
    /// waits for real.
    public func advance(by amount: TimeAmount) {
        guard isVirtual, amount > .zero else { return }
        frozenNow = frozenNow + amount
        noteActivity()
    }

    // MARK: Outstanding network operations

    /// A network operation started: virtual time may not jump until it ends.
    public func beginNetworkOperation() {
        eventLoop.preconditionInEventLoop()
        if outstandingNetworkOperations == 0, isVirtual {
            flowingSince = eventLoop.now
        }
        outstandingNetworkOperations += 1
        noteActivity()
    }

    /// A network operation ended (every `begin` has one `end`).
    public func endNetworkOperation() {
        eventLoop.preconditionInEventLoop()
        precondition(outstandingNetworkOperations > 0, "endNetworkOperation without begin")
        if outstandingNetworkOperations == 1, isVirtual {
            frozenNow = now
            flowingSince = nil
            pump?.cancel()
            pump = nil
        }
        outstandingNetworkOperations -= 1
        noteActivity()
    }

    /// A reusable on/off report of one object's outstanding state (an MQTT client):
    /// setting `isActive` begins or ends one network operation.
    public func makeNetworkOperation() -> NetworkOperation { NetworkOperation(clock: self) }

    // MARK: Virtual scheduling

    private func noteActivity() {
        guard isVirtual else { return }
        activity &+= 1
        quietPasses = 0
        scheduleCheck()
    }

    private func scheduleCheck() {
        guard !checkScheduled else { return }
        checkScheduled = true
        eventLoop.assumeIsolated().execute { self.check() }
    }

    /// One settle pass: runs the earliest due timer, or counts a quiet iteration, or jumps.
    private func check() {
        checkScheduled = false
        queue.dropCancelled()
        guard let next = queue.first else { return }
        if next.deadline <= now {
            queue.removeFirst()
            run(next)
            return
        }
        if outstandingNetworkOperations > 0 {
            armPump(for: next.deadline)
            return
        }
        let before = activity
        quietPasses += 1
        if quietPasses < Self.settlePasses {
            // Give the loop another iteration (its I/O and queued tasks) first.
            checkScheduled = true
            eventLoop.assumeIsolated().execute {
                self.checkScheduled = false
                if self.activity == before { self.check() } else { self.scheduleCheck() }
            }
            return
        }
        quietPasses = 0
        jumpCount += 1
        skipped = skipped + (next.deadline - frozenNow)
        frozenNow = next.deadline
        queue.removeFirst()
        run(next)
    }

    private func run(_ entry: TimerQueue.Entry) {
        entry.cancelled = true
        entry.body()
        noteActivity()
    }

    /// While time flows (rule 3): wake up in real time when the next timer is due.
    private func armPump(for deadline: NIODeadline) {
        pump?.cancel()
        let wait = deadline - now
        pump = eventLoop.assumeIsolated().scheduleTask(in: max(wait, .zero)) {
            self.pump = nil
            self.scheduleCheck()
        }
    }

    /// The real instant at which device time reaches `deadline`.
    private func realDeadline(for deadline: NIODeadline) -> NIODeadline {
        switch mode {
        case .real, .virtual:
            return deadline
        case .accelerated(let factor):
            let ahead = Double((deadline - origin).nanoseconds) / factor
            return origin + .nanoseconds(Int64(ahead))
        }
    }
}

/// Work scheduled on a `DeviceClock`; cancel it to keep it from running.
public final class ClockTask {
    private let cancelBody: () -> Void

    init(_ cancel: @escaping () -> Void) { self.cancelBody = cancel }

    public func cancel() { cancelBody() }
}

/// One object's outstanding network state as a single operation of its clock.
public final class NetworkOperation {
    private let clock: DeviceClock

    init(clock: DeviceClock) { self.clock = clock }

    /// True while the object waits for the network; changes begin or end an operation.
    /// (Set several times per MQTT round trip, on the loop only: unchecked exclusivity.)
    @exclusivity(unchecked) public var isActive = false {
        didSet {
            guard isActive != oldValue else { return }
            if isActive { clock.beginNetworkOperation() } else { clock.endNetworkOperation() }
        }
    }

    deinit {
        if isActive { clock.endNetworkOperation() }
    }
}

/// A binary min-heap of virtual timers by (deadline, sequence); cancelled entries are
/// dropped when they reach the top.
struct TimerQueue {
    final class Entry {
        let deadline: NIODeadline
        let sequence: UInt64
        let body: () -> Void
        var cancelled = false

        init(deadline: NIODeadline, sequence: UInt64, body: @escaping () -> Void) {
            self.deadline = deadline
            self.sequence = sequence
            self.body = body
        }

        func precedes(_ other: Entry) -> Bool {
            deadline < other.deadline || (deadline == other.deadline && sequence < other.sequence)
        }
    }

    private var heap: [Entry] = []

    var first: Entry? { heap.first }
    var count: Int { heap.count }

    mutating func insert(_ entry: Entry) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].precedes(heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func removeFirst() {
        guard !heap.isEmpty else { return }
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].precedes(heap[smallest]) { smallest = left }
            if right < heap.count, heap[right].precedes(heap[smallest]) { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }

    mutating func dropCancelled() {
        while let first = heap.first, first.cancelled { removeFirst() }
    }
}
