import NIOCore

/// What a run did, collected from the runtime's `RuntimeEvent`s: the numbers of
/// `--report FILE.json` that a CI job asserts on or plots.
///
/// ```swift
/// let report = RunReport()
/// report.attach(to: runtime)      // before runtime.start
/// // … at exit:
/// let json = report.json(runtime: runtime, exitStatus: status)
/// ```
public final class RunReport {
    /// Messages and bytes per topic.
    public struct TopicCount: Sendable, Equatable {
        public var messages = 0
        public var bytes = 0
    }

    public private(set) var published: [String: TopicCount] = [:]
    public private(set) var received: [String: TopicCount] = [:]
    /// Accepted MQTT connections (CONNACK 0), all clients.
    public private(set) var connects = 0
    /// Accepted connections of a client that had been connected before.
    public private(set) var reconnects = 0
    /// Connections that were up and ended (`offline`).
    public private(set) var disconnects = 0
    public private(set) var connectFailures = 0
    public private(set) var timersFired = 0
    public private(set) var errors: [String] = []
    public private(set) var reboots = 0
    public private(set) var consoleBytes = 0
    public private(set) var portability: [String] = []
    private var everConnected = Set<ObjectIdentifier>()
    private let wallStart = NIODeadline.now()

    public init() {}

    /// Messages published and received, all topics.
    public var publishedTotal: Int { published.values.reduce(0) { $0 + $1.messages } }
    public var receivedTotal: Int { received.values.reduce(0) { $0 + $1.messages } }

    /// Starts collecting `runtime`'s events.
    public func attach(to runtime: Runtime) {
        runtime.observe { [self] event in record(event) }
    }

    /// Counts one event.
    public func record(_ event: RuntimeEvent) {
        switch event {
        case .console(let bytes): consoleBytes += bytes.count
        case .error(let message): errors.append(message)
        case .timerFired: timersFired += 1
        case .reboot: reboots += 1
        case .mqttConnected(let client):
            connects += 1
            if !everConnected.insert(client).inserted { reconnects += 1 }
        case .mqttConnectFailed: connectFailures += 1
        case .mqttOffline: disconnects += 1
        case .mqttPublished(_, let topic, let bytes, _, _):
            published[String(decoding: topic, as: UTF8.self), default: TopicCount()].add(bytes)
        case .mqttReceived(_, let topic, let bytes):
            received[String(decoding: topic, as: UTF8.self), default: TopicCount()].add(bytes)
        case .portability(let line): portability.append(line)
        }
    }

    /// The report as JSON (keys sorted within each object, so runs diff cleanly).
    public func json(runtime: Runtime, exitStatus: Int32) -> String {
        let wall = Double((NIODeadline.now() - wallStart).nanoseconds) / 1e9
        let device = Double(runtime.clock.elapsed.nanoseconds) / 1e9
        let clockMode: String
        switch runtime.clock.mode {
        case .real: clockMode = "real"
        case .accelerated(let factor): clockMode = "speed \(factor)"
        case .virtual: clockMode = "virtual"
        }
        func topics(_ table: [String: TopicCount]) -> String {
            let entries = table.keys.sorted().map { topic in
                let count = table[topic]!
                return "\(Self.quote(topic)): {\"bytes\": \(count.bytes), \"messages\": \(count.messages)}"
            }
            return entries.isEmpty ? "{}" : "{\n      " + entries.joined(separator: ",\n      ") + "\n    }"
        }
        func strings(_ list: [String]) -> String {
            list.isEmpty ? "[]" : "[" + list.map(Self.quote).joined(separator: ", ") + "]"
        }
        let heapLimit = runtime.options.heapLimit.map(String.init) ?? "null"
        return """
            {
              "device_seconds": \(Self.number(device)),
              "errors": \(strings(errors)),
              "exit_status": \(exitStatus),
              "firmware": \(Self.quote(runtime.profile.rawValue)),
              "heap": {"limit": \(heapLimit), "peak": \(runtime.heapPeak)},
              "mqtt": {
                "connect_failures": \(connectFailures),
                "connects": \(connects),
                "disconnects": \(disconnects),
                "published": \(topics(published)),
                "published_total": \(publishedTotal),
                "received": \(topics(received)),
                "received_total": \(receivedTotal),
                "reconnects": \(reconnects)
              },
              "portability": \(strings(portability)),
              "reboots": \(reboots),
              "time": {"jumps": \(runtime.clock.jumpCount), "mode": \(Self.quote(clockMode))},
              "timers_fired": \(timersFired),
              "wall_seconds": \(Self.number(wall))
            }

            """
    }

    static func number(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        return rounded == rounded.rounded() ? String(Int64(rounded)) : String(rounded)
    }

    /// A JSON string literal.
    public static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension RunReport.TopicCount {
    mutating func add(_ bytes: Int) {
        messages += 1
        self.bytes += bytes
    }
}
