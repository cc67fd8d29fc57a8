import NIOCore

/// How the simulated NTP servers answer `sntp.sync` (more-modules spec §8): the host
/// answers from its own clock after `delay`; no packet leaves the machine. Every sync's
/// server list is recorded for test scenarios; failures can be injected.
public final class NetworkTime {
    /// How the next syncs end.
    public enum Failure: String, Sendable, CaseIterable {
        case none
        /// No listed name resolves: `err_cb(1, name)` (2.2 single name: code 4).
        case dns
        /// No server answers: `err_cb(4)` after the firmware's timing.
        case noAnswer = "no_answer"
    }

    public var failure: Failure = .none
    /// The simulated round trip (default 100 ms).
    public var delay: TimeAmount = .milliseconds(100)
    /// The server lists of every sync, in order.
    public private(set) var requests: [[String]] = []

    init() {}

    public func record(_ servers: [String]) {
        requests.append(servers)
        if requests.count > 1000 { requests.removeFirst() }
    }
}
