import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Schedules the connections' flushes on one event loop so that a chain of flushes cannot
/// starve the loop's sockets.
///
/// Why: a SwiftNIO loop runs ready tasks until none is left before it polls its sockets
/// again, so tasks that each schedule the next keep it from reading. A device script makes
/// such a chain easily: a QoS 0 publish loop driven by `puback`, whose callback fires as
/// soon as the previous message is handed to the network, in the same tick. It kept
/// publishing while the messages the broker sent, PINGRESPs and every other connection on
/// the loop waited, until the loop ended. On the device TCP paces the sends and incoming
/// data is handled in between.
///
/// Rule: a flush requested while a write's completion is being handled continues a chain.
/// Once the chain has run for `slice`, its next flush waits until the loop has polled
/// (and read what had arrived). Other flushes run on the loop's next task, as before.
///
/// How: a pipe whose read end is a NIO channel on the loop. To wait for a poll, one byte
/// is written to it; the loop finds it at its next poll, together with whatever else is
/// ready, and the waiting flushes run from the pipe channel's read. The pipe is made the
/// first time a chain needs it.
///
/// The slice is real time (`NIODeadline.now()`), not the device clock: it is about this
/// host's sockets, not about device behaviour.
///
/// One per event loop (`HostNetwork.flushScheduler`), shared by its writers. Use only on
/// `eventLoop`.
public final class FlushScheduler {
    public let eventLoop: any EventLoop
    /// How long a chain of flushes may run before the loop must poll.
    public let slice: TimeAmount

    /// Handling a write's completion (nested: one client's callback may write on another).
    @exclusivity(unchecked) private var completionDepth = 0
    @exclusivity(unchecked) private var chainStart: NIODeadline?
    @exclusivity(unchecked) private var afterPoll: [() -> Void] = []
    @exclusivity(unchecked) private var wakeUpPipe: WakeUpPipe = .none

    private enum WakeUpPipe {
        case none
        case opening
        case open(writeEnd: CInt, channel: any Channel)
        /// The pipe could not be made: flushes fall back to plain tasks.
        case failed
    }

    public init(eventLoop: any EventLoop, slice: TimeAmount = .milliseconds(1)) {
        self.eventLoop = eventLoop
        self.slice = slice
    }

    deinit {
        if case .open(let writeEnd, let channel) = wakeUpPipe {
            close(writeEnd)
            channel.close(promise: nil)
        }
    }

    /// Runs `body` (a write's completion handling); flushes it requests continue a chain.
    public func completingWrite(_ body: () -> Void) {
        completionDepth += 1
        defer { completionDepth -= 1 }
        body()
    }

    /// Runs `flush` on the loop: as its next task, or after its next poll when it
    /// continues a chain that has run for `slice`.
    public func schedule(_ flush: @escaping () -> Void) {
        let loop = eventLoop.assumeIsolated()
        guard completionDepth > 0 else {
            chainStart = nil
            loop.execute(flush)
            return
        }
        let now = NIODeadline.now()
        let start = chainStart ?? now
        guard now - start >= slice else {
            chainStart = start
            loop.execute(flush)
            return
        }
        chainStart = nil
        runAfterNextPoll(flush)
    }

    /// The chain of flushes is waiting for a poll (tests).
    public var isWaitingForPoll: Bool { !afterPoll.isEmpty }

    private func runAfterNextPoll(_ body: @escaping () -> Void) {
        afterPoll.append(body)
        guard afterPoll.count == 1 else { return }  // one byte per round
        signal()
    }

    private func signal() {
        switch wakeUpPipe {
        case .open(let writeEnd, _):
            var byte: UInt8 = 1
            if write(writeEnd, &byte, 1) != 1 {
                // Cannot happen with one byte per round (the reads drain the pipe); never
                // leave a flush behind, though.
                runWaiting(pollHappened: false)
            }
        case .opening:
            break  // signalled once the pipe is open
        case .none:
            openPipe()
        case .failed:
            runWaiting(pollHappened: false)
        }
    }

    private func openPipe() {
        var fds: [CInt] = [-1, -1]
        guard pipe(&fds) == 0 else {
            wakeUpPipe = .failed
            runWaiting(pollHappened: false)
            return
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeUpPipe = .opening
        let handler = NIOLoopBound(PollHandler(scheduler: self), eventLoop: eventLoop)
        NIOPipeBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
            .takingOwnershipOfDescriptor(input: fds[0])
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    self.wakeUpPipe = .open(writeEnd: fds[1], channel: channel)
                case .failure:
                    close(fds[0])
                    close(fds[1])
                    self.wakeUpPipe = .failed
                }
                if !self.afterPoll.isEmpty { self.signal() }
            }
    }

    /// Runs the flushes waiting for a poll: now if the loop has just polled (the pipe's
    /// byte arrived), else as plain tasks (the pipe is not usable).
    fileprivate func runWaiting(pollHappened: Bool) {
        var bodies: [() -> Void] = []
        swap(&bodies, &afterPoll)
        let loop = eventLoop.assumeIsolated()
        for body in bodies {
            if pollHappened { body() } else { loop.execute(body) }
        }
    }

    /// Reads the pipe's bytes; each read means the loop has just polled.
    private final class PollHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        private weak var scheduler: FlushScheduler?

        init(scheduler: FlushScheduler) {
            self.scheduler = scheduler
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            scheduler?.runWaiting(pollHappened: true)
        }
    }
}
