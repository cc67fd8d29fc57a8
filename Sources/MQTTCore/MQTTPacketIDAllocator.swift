/// Hands out MQTT packet identifiers for one client, across reconnects.
///
/// Starts at 1, +1 per allocation, skips 0 on wrap, and skips identifiers still in use by
/// the current connection's queue.
public struct MQTTPacketIDAllocator: Sendable {
    /// The identifier the next allocation will try first.
    public private(set) var nextCandidate: UInt16

    public init(startingAt first: UInt16 = 1) {
        self.nextCandidate = first == 0 ? 1 : first
    }

    /// Returns the next identifier for which `isInUse` is false (after 65535 tries, the next
    /// one regardless).
    public mutating func allocate(isInUse: (UInt16) -> Bool = { _ in false }) -> UInt16 {
        var tries = 0
        while true {
            let candidate = nextCandidate
            nextCandidate = candidate == UInt16.max ? 1 : candidate + 1
            tries += 1
            if !isInUse(candidate) || tries >= Int(UInt16.max) { return candidate }
        }
    }
}
