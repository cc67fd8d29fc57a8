/// The firmware's task queues (`node.task.post`, `node.input` lines, pipe readers):
/// three priorities, highest first, FIFO within a priority, one task per loop turn so
/// that timers and sockets interleave with a chain of tasks as on the device.
///
/// Pending tasks keep the process alive (spec §1.1: "no pending … posted task"); a
/// simulated reboot drops them with everything else. Use only on the event loop.
public final class TaskQueue: RuntimeHandle {
    public enum Priority: Int, CaseIterable, Sendable {
        case low = 0, medium = 1, high = 2
    }

    unowned let runtime: Runtime
    private var queues: [[() -> Void]] = [[], [], []]
    private var turnScheduled = false

    init(runtime: Runtime) {
        self.runtime = runtime
    }

    /// Tasks waiting at `priority`.
    public func pending(_ priority: Priority) -> Int { queues[priority.rawValue].count }

    public var isEmpty: Bool { queues.allSatisfy(\.isEmpty) }

    /// Runs `body` on a later loop turn, after every task of a higher priority and
    /// those already posted at the same one; dropped if the device reboots first.
    public func post(_ priority: Priority, _ body: @escaping () -> Void) {
        let generation = runtime.generation
        queues[priority.rawValue].append { [unowned runtime] in
            if runtime.isCurrent(generation) { body() }
        }
        runtime.retain(self)
        scheduleTurn()
    }

    private func scheduleTurn() {
        guard !turnScheduled else { return }
        turnScheduled = true
        runtime.eventLoop.assumeIsolated().execute { [weak self] in self?.runNext() }
    }

    private func runNext() {
        turnScheduled = false
        guard !runtime.halted, let index = queues.indices.reversed().first(where: { !queues[$0].isEmpty }) else { return }
        let body = queues[index].removeFirst()
        if isEmpty { runtime.release(self) }
        body()
        if !isEmpty { scheduleTurn() }
    }

    public func abortForReboot() {
        queues = [[], [], []]
    }
}
