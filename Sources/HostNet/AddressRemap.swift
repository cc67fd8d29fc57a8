/// A table that redirects outgoing connections: `FROM=TO`, where FROM is `host` or
/// `host:port` and TO is `host:port` or `host` (keeping the port). IPv6 literals go in
/// brackets: `[::1]:1883`.
///
/// Used by the command line (`--remap`) for mqtt, net and tls connections. A `host:port`
/// rule wins over a `host` rule; host names compare case-insensitively; the first matching
/// rule of each kind applies. Remapping happens once (the result is not remapped again).
///
/// A rule whose FROM host is `*` or `0.0.0.0` names a listening port instead:
/// `*:80=127.0.0.1:8080` makes a server on device port 80 listen on host port 8080, and
/// `*:5000=127.0.0.1` on a free port (see `listenTarget(port:)`).
public struct AddressRemap: Sendable, Equatable {
    /// One `FROM=TO` rule.
    public struct Rule: Sendable, Equatable {
        public var fromHost: String
        /// nil: any port.
        public var fromPort: Int?
        public var toHost: String
        /// nil: keep the original port.
        public var toPort: Int?

        public init(fromHost: String, fromPort: Int? = nil, toHost: String, toPort: Int? = nil) {
            self.fromHost = fromHost
            self.fromPort = fromPort
            self.toHost = toHost
            self.toPort = toPort
        }
    }

    /// A malformed remap entry; `description` is a complete message for the user.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    public private(set) var rules: [Rule] = []

    public init(rules: [Rule] = []) {
        self.rules = rules
    }

    /// Parses a comma-separated list of `FROM=TO` entries (also a single entry).
    public init(parsing text: String) throws {
        for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
            try add(parsing: String(entry))
        }
    }

    /// Parses one `FROM=TO` entry and appends it.
    public mutating func add(parsing entry: String) throws {
        let trimmed = entry.trimmingSpaces
        let parts = trimmed.split(separator: "=", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw Self.error(entry, "expected exactly one '='")
        }
        let from = try Self.parseEndpoint(String(parts[0]), entry: entry, side: "FROM")
        let to = try Self.parseEndpoint(String(parts[1]), entry: entry, side: "TO")
        rules.append(Rule(fromHost: from.host, fromPort: from.port, toHost: to.host, toPort: to.port))
    }

    /// Where a connection to `host:port` really goes.
    public func apply(host: String, port: Int) -> (host: String, port: Int) {
        let name = Self.normalise(host)
        if let rule = rules.first(where: { $0.fromPort == port && Self.normalise($0.fromHost) == name }) {
            return (rule.toHost, rule.toPort ?? port)
        }
        if let rule = rules.first(where: { $0.fromPort == nil && Self.normalise($0.fromHost) == name }) {
            return (rule.toHost, rule.toPort ?? port)
        }
        return (host, port)
    }

    /// Whether a listening `port` is named by a rule, and the host port it maps to
    /// (nil inside: a free port).
    public func listenTarget(port: Int) -> (named: Bool, hostPort: Int?) {
        guard let rule = rules.first(where: { $0.fromPort == port && Self.isAnyHost($0.fromHost) }) else {
            return (false, nil)
        }
        return (true, rule.toPort)
    }

    private static func isAnyHost(_ host: String) -> Bool {
        host == "*" || host == "0.0.0.0"
    }

    private static func normalise(_ host: String) -> String {
        var host = host.lowercased()
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host
    }

    private static func error(_ entry: String, _ why: String) -> ParseError {
        ParseError(description: "invalid remap entry \"\(entry)\": \(why) "
            + "(expected FROM=TO, FROM = host or host:port, TO = host:port or host, e.g. "
            + "broker.example.com:1883=127.0.0.1:1884)")
    }

    private static func parseEndpoint(_ text: String, entry: String, side: String) throws -> (host: String, port: Int?) {
        let text = text.trimmingSpaces
        guard !text.isEmpty else { throw error(entry, "\(side) is empty") }
        var host: Substring
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw error(entry, "\(side) has '[' without ']'") }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":") else { throw error(entry, "\(side) has text after ']'") }
                portText = rest.dropFirst()
            }
        } else {
            let colons = text.filter { $0 == ":" }.count
            if colons == 1 {
                let colon = text.firstIndex(of: ":")!
                host = text[..<colon]
                portText = text[text.index(after: colon)...]
            } else if colons == 0 {
                host = Substring(text)
            } else {
                throw error(entry, "IPv6 address in \(side) must be written in brackets")
            }
        }
        guard !host.isEmpty else { throw error(entry, "\(side) has no host") }
        guard !host.contains(where: { $0 == " " || $0 == "/" }) else {
            throw error(entry, "\(side) host \"\(host)\" is not a host name or address")
        }
        var port: Int?
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw error(entry, "\(side) port \"\(portText)\" is not a number from 1 to 65535")
            }
            port = value
        }
        return (String(host), port)
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text = text.dropFirst() }
        while text.last?.isWhitespace == true { text = text.dropLast() }
        return String(text)
    }
}
