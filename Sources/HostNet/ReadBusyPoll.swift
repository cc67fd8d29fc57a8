import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Keeps an event loop awake for a moment while a peer streams data at it, instead of
/// letting it fall asleep between two messages.
///
/// Why: a reader that drains its socket and then sleeps must be woken by the peer's next
/// write, and on a local broker the broker pays for that wake-up inside its `write`. A
/// subscriber that keeps up too well thus slows the broker that feeds it (bench/NOTES.md).
///
/// Rule: the peer is streaming when a read completes less than `window` after the
/// previous one, nothing has been written since, and the reading connection awaits no
/// reply. Then the loop stays awake until `window` has passed since that read: it runs
/// no-op tasks and yields the CPU between them (a producer on the same core runs
/// meanwhile). A SwiftNIO loop polls its sockets only once no task is ready, so it reads
/// nothing while it spins; when the spin ends it polls, finds what arrived meanwhile and
/// reads it in one go. The spin ends early as soon as anything is written (by a timer,
/// say). Writing, or waiting for an acknowledgement, means the next data is the peer's
/// answer, which needs the peer's CPU: on a small machine a spinning loop takes it away
/// (bench/NOTES.md). Sparse traffic never spins; a read waits at most `window` behind a
/// spin. Off by default (`--busy-poll 0`): it trades CPU for receive speed.
///
/// Times are real (`NIODeadline.now()`), not the device clock: the window is about this
/// host's CPU and its peer's, not about device behaviour.
///
/// One per event loop, shared by every connection on it (the loop sleeps as a whole).
/// Use only on `eventLoop`.
public final class ReadBusyPoll {
    public let eventLoop: any EventLoop
    /// How close together reads must come to start polling, and how long polling goes
    /// on after the last one.
    public let window: TimeAmount

    @exclusivity(unchecked) private var lastRead = NIODeadline.uptimeNanoseconds(0)
    /// Since the last read: nothing written, and that read's connection awaited no reply.
    @exclusivity(unchecked) private var quietSinceLastRead = false
    @exclusivity(unchecked) public private(set) var isPolling = false

    public init(eventLoop: any EventLoop, window: TimeAmount) {
        self.eventLoop = eventLoop
        self.window = window
    }

    /// A channel on this loop finished a read (after flushing what the read caused);
    /// `awaitingReply`: its connection still waits for an acknowledgement from the peer.
    public func readCompleted(awaitingReply: Bool = false) {
        let now = NIODeadline.now()
        let streaming = quietSinceLastRead && !awaitingReply && now - lastRead < window
        lastRead = now
        quietSinceLastRead = !awaitingReply
        guard streaming, !isPolling else { return }
        isPolling = true
        eventLoop.assumeIsolated().execute { self.poll() }
    }

    /// A channel on this loop flushed bytes to its peer.
    public func wrote() {
        quietSinceLastRead = false
    }

    private func poll() {
        guard quietSinceLastRead, NIODeadline.now() - lastRead < window else {
            isPolling = false
            return
        }
        sched_yield()
        eventLoop.assumeIsolated().execute { self.poll() }
    }
}
