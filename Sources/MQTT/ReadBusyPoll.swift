import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps an event loop polling for a moment while a peer streams data at it, instead of
/// letting it fall asleep between two messages.
///
/// Why: a reader that drains its socket and then sleeps must be woken by the peer's next
/// write, and on a local broker the broker pays for that wake-up inside its `write`. A
/// subscriber that keeps up too well thus slows the broker that feeds it: a QoS 0 flood
/// woke ours 30–57 k times per 100 000 messages, and it received at 0.8–0.9× of
/// `mosquitto_sub` (bench/NOTES.md).
///
/// Rule: a read that completes less than `window` after the previous one, with nothing
/// written since, starts polling: the loop runs a no-op task, so its next `epoll_wait`
/// returns at once, and yields the CPU in between (a producer on the same core runs
/// meanwhile). Polling stops once no read has completed for `window`, or as soon as
/// anything is written. Writing means the next data is probably the peer's answer, which
/// needs the peer's CPU: on a small machine a polling loop would take it away (measured:
/// publishing at window 1 fell to 0.6–0.8×). Sparse traffic never polls; a stream polls
/// at most `window` past its last read.
///
/// One per event loop, shared by every connection on it (the loop sleeps as a whole).
/// Use only on `eventLoop`.
public final class ReadBusyPoll {
    public let eventLoop: any EventLoop
    /// How close together reads must come to start polling, and how long polling goes
    /// on after the last one.
    public let window: TimeAmount

    private var lastRead = NIODeadline.uptimeNanoseconds(0)
    private var wroteSinceLastRead = false
    public private(set) var isPolling = false

    public init(eventLoop: any EventLoop, window: TimeAmount) {
        self.eventLoop = eventLoop
        self.window = window
    }

    /// A channel on this loop finished a read (after flushing what the read caused).
    public func readCompleted() {
        let now = NIODeadline.now()
        let gap = now - lastRead
        lastRead = now
        let streaming = !wroteSinceLastRead
        wroteSinceLastRead = false
        guard !isPolling, streaming, gap < window else { return }
        isPolling = true
        eventLoop.assumeIsolated().execute { self.poll() }
    }

    /// A channel on this loop flushed bytes to its peer.
    public func wrote() {
        wroteSinceLastRead = true
    }

    private func poll() {
        guard !wroteSinceLastRead, NIODeadline.now() - lastRead < window else {
            isPolling = false
            return
        }
        sched_yield()
        eventLoop.assumeIsolated().execute { self.poll() }
    }
}
