import NIOCore

/// A queue of events that are never delivered inside the API call that caused them.
///
/// Why: on the device a callback never runs inside the Lua call that caused it (a
/// `publish` does not call `puback` before it returns); a script that works on the host
/// must not depend on an ordering the device never produces. An API entry point runs
/// its body in `apiScope`; events appended meanwhile are delivered on a later loop tick.
/// Events appended outside any API call (from a read, a timer) are delivered at once,
/// in order, after those still queued.
///
/// Its methods are inlinable so that each client's event type is specialised at the
/// use site: an unspecialised generic queue cost a metadata look-up per event
/// (bench/NOTES.md, session 6).
///
/// Use only on `eventLoop`.
public final class DeferredEvents<Event> {
    public let eventLoop: any EventLoop
    /// Receives each event, in order.
    @exclusivity(unchecked) public var handler: ((Event) -> Void)?

    @exclusivity(unchecked) @usableFromInline var queue = CircularBuffer<Event>(initialCapacity: 4)  // grows on demand; one per client (fleet memory)
    @exclusivity(unchecked) @usableFromInline var apiDepth = 0
    @exclusivity(unchecked) @usableFromInline var draining = false
    @exclusivity(unchecked) @usableFromInline var drainScheduled = false

    @inlinable
    public init(eventLoop: any EventLoop, handler: ((Event) -> Void)? = nil) {
        self.eventLoop = eventLoop
        self.handler = handler
    }

    /// Runs an API call's body: events it causes wait for a later tick.
    @inlinable
    public func apiScope<T>(_ body: () throws -> T) rethrows -> T {
        apiDepth += 1
        defer { apiDepth -= 1 }
        return try body()
    }

    /// Whether an API call is running (events are deferred).
    @inlinable
    public var insideAPICall: Bool { apiDepth > 0 }

    /// Queues `event`; call `drainIfPossible()` once the caller's state is consistent.
    @inlinable
    public func append(_ event: Event) {
        queue.append(event)
    }

    /// Drops every queued event (an aborted connection, a reboot).
    @inlinable
    public func removeAll() {
        queue.removeAll()
    }

    @inlinable
    public var isEmpty: Bool { queue.isEmpty }

    /// Delivers the queued events now, or on the next tick inside an API call. A handler
    /// that causes more events gets them after it returns, not nested.
    @inlinable
    public func drainIfPossible() {
        guard !draining, !queue.isEmpty else { return }
        if apiDepth > 0 {
            guard !drainScheduled else { return }
            drainScheduled = true
            eventLoop.assumeIsolated().execute {
                self.drainScheduled = false
                self.drainIfPossible()
            }
            return
        }
        draining = true
        defer { draining = false }
        while let event = queue.popFirst() {
            handler?(event)
        }
    }
}
