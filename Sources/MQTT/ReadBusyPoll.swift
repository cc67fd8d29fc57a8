import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps an event loop polling for a moment after reads that arrive in quick
/// succession, instead of letting it fall asleep between two messages.
///
/// Why: a reader that drains its socket and then sleeps must be woken by the peer's next
/// write, and on a local broker the broker pays for that wake-up inside its `write`. A
/// subscriber that keeps up too well thus slows the broker that feeds it: before this, a
/// QoS 0 flood woke ours 53–57 k times per 100 000 messages and it received at 0.8–0.9×
/// of `mosquitto_sub` (bench/NOTES.md).
///
/// Rule: a read that completes less than `window` after the previous one starts polling:
/// the loop runs a no-op task, so its next `epoll_wait` returns at once, and yields the
/// CPU in between (a producer on the same core runs meanwhile). Polling stops once no
/// read has completed for `window`. Sparse traffic (reads further apart) never polls;
/// dense traffic polls at most `window` past its last read.
///
/// One per event loop, shared by every connection on it (the loop sleeps as a whole).
/// Use only on `eventLoop`.
public final class ReadBusyPoll {
    public let eventLoop: any EventLoop
    /// How close together reads must come to start polling, and how long polling goes
    /// on after the last one.
    public let window: TimeAmount

    private var lastRead = NIODeadline.uptimeNanoseconds(0)
    public private(set) var isPolling = false

    public init(eventLoop: any EventLoop, window: TimeAmount) {
        self.eventLoop = eventLoop
        self.window = window
    }

    /// A channel on this loop finished a read.
    public func readCompleted() {
        let now = NIODeadline.now()
        let gap = now - lastRead
        lastRead = now
        guard !isPolling, gap < window else { return }
        isPolling = true
        eventLoop.assumeIsolated().execute { self.poll() }
    }

    private func poll() {
        guard NIODeadline.now() - lastRead < window else {
            isPolling = false
            return
        }
        sched_yield()
        eventLoop.assumeIsolated().execute { self.poll() }
    }
}
