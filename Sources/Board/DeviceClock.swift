import NIOCore

/// The runtime's one clock: `tmr`, MQTT keepalives and every timeout read the time and
/// schedule their work here, never on the wall clock or NIO deadlines directly, so that
/// a script behaves the same whether time is real or accelerated (and, later, virtual).
///
/// Instants are `NIODeadline`s on the clock's own time line. In real mode that is the
/// event loop's time (`eventLoop.now`, so an `EmbeddedEventLoop` in tests moves it by
/// hand); accelerated, device time runs `factor` times faster than real time from the
/// moment the clock was made.
///
/// Use only on `eventLoop`.
public final class DeviceClock {
    public enum Mode: Sendable, Equatable {
        /// Device time is the event loop's time.
        case real
        /// Device time runs `factor` times as fast as real time (`--speed N`).
        case accelerated(factor: Double)
    }

    public let eventLoop: any EventLoop
    public let mode: Mode
    /// Real instant at which device time and real time were equal.
    private let origin: NIODeadline

    public init(eventLoop: any EventLoop, mode: Mode = .real) {
        if case .accelerated(let factor) = mode {
            precondition(factor > 0 && factor.isFinite, "the speed factor must be a positive number")
        }
        self.eventLoop = eventLoop
        self.mode = mode
        self.origin = eventLoop.now
    }

    /// The current device time.
    public var now: NIODeadline {
        switch mode {
        case .real:
            return eventLoop.now
        case .accelerated(let factor):
            let elapsed = Double((eventLoop.now - origin).nanoseconds) * factor
            return origin + .nanoseconds(Int64(elapsed))
        }
    }

    /// Runs `body` on the loop once device time reaches `deadline`.
    @discardableResult
    public func schedule(at deadline: NIODeadline, _ body: @escaping () -> Void) -> ClockTask {
        ClockTask(eventLoop.assumeIsolated().scheduleTask(deadline: realDeadline(for: deadline), body))
    }

    /// Runs `body` on the loop after `delay` of device time.
    @discardableResult
    public func schedule(in delay: TimeAmount, _ body: @escaping () -> Void) -> ClockTask {
        schedule(at: now + delay, body)
    }

    /// The real instant at which device time reaches `deadline`.
    private func realDeadline(for deadline: NIODeadline) -> NIODeadline {
        switch mode {
        case .real:
            return deadline
        case .accelerated(let factor):
            let ahead = Double((deadline - origin).nanoseconds) / factor
            return origin + .nanoseconds(Int64(ahead))
        }
    }
}

/// Work scheduled on a `DeviceClock`; cancel it to keep it from running.
public final class ClockTask {
    private let scheduled: Scheduled<Void>

    init(_ scheduled: Scheduled<Void>) { self.scheduled = scheduled }

    public func cancel() { scheduled.cancel() }
}
