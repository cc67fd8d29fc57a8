import NIOCore

/// The output side of one connection: bytes queued during a loop tick go out in one
/// flush, and nothing is pushed into NIO while the channel is not writable.
///
/// Rules:
/// - `enqueue` appends to the writer's buffer and schedules one flush per tick through
///   the network's `FlushScheduler` (so a chain of flushes cannot starve the loop);
/// - once the buffer holds `eagerFlushBytes`, it is flushed at once: a burst reaches the
///   peer while the script still produces it, and no single buffer holds all of it;
/// - inside a read (`readStarted` … `readCompleted`), replies wait for the read to
///   complete, so what one read causes leaves in one write;
/// - while the channel is not writable (NIO holds more than its high-water mark), the
///   bytes stay here and go out when `channelWritabilityChanged` says it is writable
///   again. `isWritable` and `bufferedBytes` let the owner hold back its producer.
///
/// The owner's `prepareFlush` hook runs just before each flush and says what to do once
/// the bytes are handed to NIO or written (an MQTT QoS 0 publish completes when written).
///
/// Use only on the channel's event loop; the owner calls `attach` from `handlerAdded`,
/// `detach` from `handlerRemoved`, and forwards writability changes.
public final class CoalescingWriter {
    /// What to do after a flush.
    public enum FlushCompletion {
        /// Nothing.
        case none
        /// Run this right after the bytes were handed to NIO.
        case handedOff(() -> Void)
        /// Run this once NIO has written the bytes to the socket (successfully).
        case written(() -> Void)
    }

    /// Queued bytes after which `enqueue` flushes without waiting for the end of the tick.
    public static var eagerFlushBytes: Int { 64 * 1024 }

    public let network: HostNetwork
    /// Called just before a flush; nil skips the flush (keeps the bytes).
    @exclusivity(unchecked) public var prepareFlush: (() -> FlushCompletion?)?
    /// Called when the channel becomes writable again after a stall.
    @exclusivity(unchecked) public var becameWritable: (() -> Void)?

    @exclusivity(unchecked) private var context: ChannelHandlerContext?
    @exclusivity(unchecked) private var buffer: ByteBuffer
    /// The previous flush's buffer, cleared for reuse.
    @exclusivity(unchecked) private var spareBuffer: ByteBuffer?
    @exclusivity(unchecked) private var flushScheduled = false
    @exclusivity(unchecked) private var reading = false
    @exclusivity(unchecked) private var flushAfterRead = false
    @exclusivity(unchecked) private var stalled = false

    public init(network: HostNetwork) {
        self.network = network
        self.buffer = ByteBufferAllocator().buffer(capacity: 0)
    }

    /// The handler that writes was added: writes start at its context.
    public func attach(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The handler was removed (the context holds the pipeline, which holds the handler).
    public func detach() {
        context = nil
    }

    /// Bytes queued here, not yet handed to NIO.
    public var bufferedBytes: Int { buffer.readableBytes }

    /// Whether the channel takes more bytes now (false: NIO holds more than its
    /// high-water mark; flushing waits).
    public var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Appends bytes (`body` writes them into the buffer) and schedules the flush.
    public func enqueue(_ body: (inout ByteBuffer) -> Void) {
        body(&buffer)
        if buffer.readableBytes >= Self.eagerFlushBytes {
            flush()
            return
        }
        if reading {
            flushAfterRead = true
            return
        }
        guard !flushScheduled else { return }
        flushScheduled = true
        network.flushScheduler.schedule { self.flush() }
    }

    /// The channel started delivering a read: flushes wait for `readCompleted`.
    public func readStarted() {
        reading = true
    }

    /// The channel's read completed: flush what it caused.
    public func readCompleted() {
        reading = false
        if flushAfterRead {
            flushAfterRead = false
            flush()
        }
    }

    /// Forward `channelWritabilityChanged` here.
    public func writabilityChanged() {
        guard stalled, isWritable else { return }
        stalled = false
        if buffer.readableBytes > 0 { flush() }
        becameWritable?()
    }

    /// Hands the queued bytes to NIO and flushes, unless the channel is not writable.
    public func flush() {
        flushScheduled = false
        guard let context, buffer.readableBytes > 0 else { return }
        guard context.channel.isWritable else {
            stalled = true
            return
        }
        var completion = FlushCompletion.none
        if let prepareFlush {
            guard let wanted = prepareFlush() else { return }
            completion = wanted
        }
        network.readBusyPoll?.wrote()
        var written = buffer
        // The buffer written last time is normally free again (NIO wrote it at once):
        // reuse its storage rather than allocate one per flush.
        buffer = spareBuffer ?? ByteBufferAllocator().buffer(capacity: min(written.readableBytes, 65_536))
        spareBuffer = nil
        switch completion {
        case .written(let body):
            let scheduler = network.flushScheduler
            context.writeAndFlush(NIOAny(written)).assumeIsolated().whenComplete { result in
                guard case .success = result else { return }
                // Flushes the completion requests continue a chain (FlushScheduler).
                scheduler.completingWrite(body)
            }
        case .handedOff(let body):
            context.writeAndFlush(NIOAny(written), promise: nil)
            body()
        case .none:
            context.writeAndFlush(NIOAny(written), promise: nil)
        }
        if !context.channel.isWritable { stalled = true }
        // Still shared if NIO has not written it yet: then `clear()` allocates anew.
        if written.capacity <= 65_536 {
            written.clear()
            spareBuffer = written
        }
    }

    /// Writes whatever is queued (even while not writable) and closes the channel after
    /// it: a last message (an MQTT DISCONNECT) still reaches the peer.
    public func flushAndClose() {
        guard let context else { return }
        let channel = context.channel
        let bytes = buffer
        buffer.clear()
        // Writes complete in order: closing after this one closes after all earlier.
        context.writeAndFlush(NIOAny(bytes)).assumeIsolated().whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}
