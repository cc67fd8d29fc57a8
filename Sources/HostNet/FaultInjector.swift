import Board
import NIOCore

/// Network faults a test scenario injects into the connections of one `HostNetwork`.
///
/// Set `HostNetwork.faults` before any connection is made: every pipeline HostNet then
/// builds (outgoing connects and accepted connections) gets a `FaultInjectionHandler`,
/// and the connector consults the injector before it connects. Everything is selected
/// by a `FaultTarget` (host and/or port, `*` for all), matched against the name and port
/// the device used as well as where the connection really goes after `--remap`.
///
/// - On the connections open now: `drop` (closed at once), `halfOpen` (the socket stays
///   open, every byte in either direction is silently lost from then on).
/// - Rules for open and future connections: `delay` (inbound and outbound bytes are held
///   for that much device time), `fragment` (inbound data arrives one byte per read, one
///   read per loop tick), `cutAfter` (the connection closes after that many more bytes,
///   counted in both directions; the last read or write is truncated to the limit).
/// - Rules for new connections: `refuse` (connects fail as refused; accepted connections
///   are closed at once), `failDNS` (a name does not resolve).
///
/// Use only on the network's event loop.
public final class FaultInjector {
    /// Which connections a fault applies to.
    public struct FaultTarget: Sendable, Equatable, CustomStringConvertible {
        /// nil: any host.
        public var host: String?
        /// nil: any port.
        public var port: Int?

        public init(host: String? = nil, port: Int? = nil) {
            self.host = host
            self.port = port
        }

        /// Every connection.
        public static let all = FaultTarget()

        /// Parses `host:port`, `host`, `:port`, `*:port`, `[v6]:port` or `*`.
        public init(parsing text: String) throws(FaultTargetError) {
            var text = Substring(text).drop { $0 == " " }
            while text.last == " " { text = text.dropLast() }
            guard !text.isEmpty else { throw FaultTargetError(description: "empty connection selector") }
            if text == "*" { self.init(); return }
            var portText: Substring?
            if text.hasPrefix("[") {
                guard let close = text.firstIndex(of: "]") else { throw FaultTargetError(description: "bad address \(text)") }
                let rest = text[text.index(after: close)...]
                if rest.hasPrefix(":") { portText = rest.dropFirst() }
                text = text[text.index(after: text.startIndex)..<close]
            } else if let colon = text.lastIndex(of: ":"), text.firstIndex(of: ":") == colon {
                portText = text[text.index(after: colon)...]
                text = text[..<colon]
            }
            var port: Int?
            if let portText {
                guard let value = Int(portText), (0...65535).contains(value) else {
                    throw FaultTargetError(description: "bad port in \(text):\(portText)")
                }
                port = value
            }
            self.init(host: text.isEmpty || text == "*" ? nil : String(text), port: port)
        }

        func matches(_ endpoint: Endpoint) -> Bool {
            if let host, host != endpoint.host, host != endpoint.targetHost { return false }
            if let port, port != endpoint.port, port != endpoint.targetPort { return false }
            return true
        }

        public var description: String {
            (host ?? "*") + (port.map { ":\($0)" } ?? "")
        }
    }

    public struct FaultTargetError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Both ends of a connection as a fault sees them.
    public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
        /// The host and port the device named (outgoing), or the peer's address and the
        /// device's listening port (accepted).
        public var host: String
        public var port: Int
        /// Where it really goes after remapping (accepted: the peer and the real local port).
        public var targetHost: String
        public var targetPort: Int
        public var accepted: Bool

        public var description: String {
            accepted ? "\(host) → device port \(port)" : "\(host):\(port)"
        }
    }

    /// Rules that apply to open and future connections.
    struct Rules {
        var delay: TimeAmount = .zero
        var fragment = false
        var cutAfter: Int?
    }

    let clock: DeviceClock
    private var ruleList: [(FaultTarget, RuleChange)] = []
    private var refused: [FaultTarget] = []
    private var unresolvable: Set<String> = []
    private var handlers: [ObjectIdentifier: FaultInjectionHandler] = [:]
    /// Every fault that hit a connection, for the scenario's log and tests.
    public private(set) var log: [String] = []
    /// Called for each line added to `log`.
    public var onEvent: ((String) -> Void)?
    /// Called when an outgoing connection hands new bytes to its socket (inside the
    /// device's flush: defer real work).
    public var onOutboundFlush: ((Endpoint) -> Void)?

    enum RuleChange {
        case delay(TimeAmount)
        case fragment(Bool)
        case cutAfter(Int?)
    }

    public init(clock: DeviceClock) {
        self.clock = clock
    }

    /// The connections open now, with their endpoints.
    public var openConnections: [Endpoint] { handlers.values.map(\.endpoint) }

    /// The connections open now with the bytes that arrived from the peer and that the
    /// device wrote (counted before any fault), oldest first.
    public var connectionStatistics: [(endpoint: Endpoint, bytesIn: Int, bytesOut: Int)] {
        handlers.values.sorted { $0.serial < $1.serial }.map { ($0.endpoint, $0.bytesIn, $0.bytesOut) }
    }

    // MARK: Faults on open connections

    /// Closes every matching open connection at once (no more bytes either way).
    /// Returns how many it closed.
    @discardableResult
    public func drop(_ target: FaultTarget) -> Int {
        let hit = matching(target)
        for handler in hit { handler.dropNow() }
        if !hit.isEmpty { record("dropped \(hit.count) connection(s) to \(target)") }
        return hit.count
    }

    /// Makes every matching open connection half-open: the socket stays open and every
    /// byte in either direction is lost from now on. Returns how many.
    @discardableResult
    public func halfOpen(_ target: FaultTarget) -> Int {
        let hit = matching(target)
        for handler in hit { handler.blackholed = true }
        if !hit.isEmpty { record("half-opened \(hit.count) connection(s) to \(target)") }
        return hit.count
    }

    // MARK: Rules for open and future connections

    /// Holds inbound and outbound bytes of matching connections for `delay` of device time
    /// (zero ends the rule; what is held is released in order).
    public func delay(_ target: FaultTarget, by delay: TimeAmount) {
        apply(target, .delay(delay))
        record("delay \(delay.nanoseconds / 1_000_000) ms on \(target)")
    }

    /// Inbound data of matching connections arrives one byte per read (false ends it).
    public func fragment(_ target: FaultTarget, _ on: Bool = true) {
        apply(target, .fragment(on))
        record("fragment \(on ? "on" : "off") on \(target)")
    }

    /// Matching connections close after `bytes` more bytes in either direction (nil ends it).
    public func cutAfter(_ target: FaultTarget, bytes: Int?) {
        apply(target, .cutAfter(bytes))
        record("cut after \(bytes.map(String.init) ?? "-") bytes on \(target)")
    }

    // MARK: Rules for new connections

    /// New connections to (or accepted from) a match are refused (`allow` lifts it).
    public func refuse(_ target: FaultTarget) {
        refused.append(target)
        record("refusing connections to \(target)")
    }

    /// `name` no longer resolves (`resolveDNS` lifts it).
    public func failDNS(_ name: String) {
        unresolvable.insert(name)
        record("DNS fails for \(name)")
    }

    /// Lifts the `refuse` rules made with the same target (`clearRules` lifts all).
    public func allow(_ target: FaultTarget) {
        refused.removeAll { $0 == target }
    }

    public func resolveDNS(_ name: String) { unresolvable.remove(name) }

    /// Lifts every rule (open half-open connections stay half-open).
    public func clearRules() {
        ruleList.removeAll()
        refused.removeAll()
        unresolvable.removeAll()
        for handler in handlers.values { handler.update(Rules()) }
    }

    // MARK: For the connector

    /// A connect to `endpoint` must fail this way, or nil.
    func connectFailure(_ endpoint: Endpoint, isName: Bool) -> HostConnectError? {
        if isName, unresolvable.contains(endpoint.host) || unresolvable.contains(endpoint.targetHost) {
            record("DNS lookup of \(endpoint.host) failed (injected)")
            return HostConnectError(.dnsFailure, reason: "DNS lookup of \(endpoint.host) failed: injected fault")
        }
        if isRefused(endpoint) {
            record("connection to \(endpoint) refused (injected)")
            return HostConnectError(
                .refused, reason: "TCP connect to \(endpoint.targetHost):\(endpoint.targetPort) failed: connection refused (injected fault)")
        }
        return nil
    }

    /// Whether a lookup of `name` must fail.
    func failsDNS(_ name: String, target: String) -> Bool {
        unresolvable.contains(name) || unresolvable.contains(target)
    }

    func isRefused(_ endpoint: Endpoint) -> Bool { refused.contains { $0.matches(endpoint) } }

    /// The handler for a new connection's pipeline.
    func makeHandler(_ endpoint: Endpoint) -> FaultInjectionHandler {
        nextSerial += 1
        return FaultInjectionHandler(injector: self, endpoint: endpoint, serial: nextSerial)
    }

    private var nextSerial = 0

    func rules(for endpoint: Endpoint) -> Rules {
        var rules = Rules()
        for (target, change) in ruleList where target.matches(endpoint) {
            switch change {
            case .delay(let value): rules.delay = value
            case .fragment(let on): rules.fragment = on
            case .cutAfter(let bytes): rules.cutAfter = bytes
            }
        }
        return rules
    }

    func register(_ handler: FaultInjectionHandler) { handlers[ObjectIdentifier(handler)] = handler }
    func unregister(_ handler: FaultInjectionHandler) { handlers[ObjectIdentifier(handler)] = nil }

    func record(_ line: String) {
        log.append(line)
        onEvent?(line)
    }

    private func apply(_ target: FaultTarget, _ change: RuleChange) {
        ruleList.append((target, change))
        for handler in matching(target) {
            var rules = handler.rules
            switch change {
            case .delay(let value): rules.delay = value
            case .fragment(let on): rules.fragment = on
            case .cutAfter(let bytes):
                rules.cutAfter = bytes
                handler.resetCutCounter()
            }
            handler.update(rules)
        }
    }

    private func matching(_ target: FaultTarget) -> [FaultInjectionHandler] {
        handlers.values.filter { target.matches($0.endpoint) }
    }
}
