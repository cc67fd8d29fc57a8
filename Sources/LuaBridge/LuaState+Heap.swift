import CLua
import CLuaShim

/// The device heap of a state: what the script holds, its budget and its peak
/// (`nm_heap_*` in the shim).
public struct LuaHeapStatus: Sendable, Equatable {
    /// A budget was set (`setHeapBudget`): `used` and `peak` are the script's share.
    public var isCounting: Bool
    /// The budget in bytes; nil: unlimited.
    public var limit: Int?
    /// Bytes held now.
    public var used: Int
    /// The highest `used` since counting started.
    public var peak: Int

    /// Bytes left under the budget (nil without one).
    public var free: Int? { limit.map { max(0, $0 - used) } }
}

extension LuaState {
    /// Starts counting the script's share of the heap from now, with a budget of `limit`
    /// bytes (nil: count without a limit). What the state holds already (the host's
    /// module tables and prelude: on the device they live in flash) does not count.
    /// Past the budget, allocations fail as on the device ("not enough memory" after an
    /// emergency collection); never while Swift is in control.
    public func setHeapBudget(_ limit: Int?) {
        nm_heap_setlimit(L, limit.map { max(1, $0) } ?? 0)
    }

    public var heapStatus: LuaHeapStatus {
        let status = nm_heap_status(L)
        return LuaHeapStatus(
            isCounting: status.counting != 0, limit: status.limit == 0 ? nil : Int(status.limit),
            used: Int(status.used), peak: Int(status.peak))
    }

    /// Charges host-side bytes that live in the device heap (MQTT queues, socket
    /// buffers) to the budget. Returns false, charging nothing, if they do not fit.
    public func chargeHeap(_ bytes: Int) -> Bool {
        nm_heap_charge(L, bytes) != 0
    }

    /// Gives back bytes charged with `chargeHeap`.
    public func creditHeap(_ bytes: Int) {
        nm_heap_credit(L, bytes)
    }

    /// Runs `body` with what the state allocates counted as the firmware's, not the
    /// script's: a module table built on first use lives in flash on the device, so it
    /// changes neither `node.heap()` nor the budget's peak.
    public func withFirmwareAllocations<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        nm_heap_host(L, 1)
        defer { nm_heap_host(L, 0) }
        return try body()
    }
}
