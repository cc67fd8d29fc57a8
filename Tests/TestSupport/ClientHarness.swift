import Foundation
import HostNet
import MQTT
import NIOCore
import NIOPosix

/// Runs an `MQTTClient` on its own event loop for tests and records its events and trace.
public final class ClientHarness: @unchecked Sendable {
    /// A step did not happen in time.
    public struct Timeout: Error, CustomStringConvertible {
        public var description: String
    }

    public let group: MultiThreadedEventLoopGroup
    public let loop: any EventLoop
    private let client: NIOLoopBound<MQTTClient>
    private let condition = NSCondition()
    private var events: [MQTTClientEvent] = []
    private var cursor = 0
    private var traceLines: [String] = []

    public init(
        configuration: MQTTClientConfiguration = MQTTClientConfiguration(), remap: AddressRemap = AddressRemap()
    ) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        self.loop = loop
        client = try loop.submit {
            let network = HostNetwork(eventLoop: loop, configuration: .init(remap: remap))
            return NIOLoopBound(MQTTClient(network: network, configuration: configuration), eventLoop: loop)
        }.wait()
        try run { client in
            client.eventHandler = { [self] event in record(event) }
            client.trace = { [self] line in recordTrace(line) }
        }
    }

    deinit {
        try? group.syncShutdownGracefully()
    }

    /// Runs `body` with the client on its loop and waits for the result.
    @discardableResult
    public func run<T: Sendable>(_ body: @escaping @Sendable (MQTTClient) throws -> T) throws -> T {
        let client = self.client
        return try loop.submit { try body(client.value) }.wait()
    }

    private func record(_ event: MQTTClientEvent) {
        condition.lock()
        events.append(event)
        condition.broadcast()
        condition.unlock()
    }

    private func recordTrace(_ line: String) {
        condition.lock()
        traceLines.append(line)
        condition.unlock()
    }

    /// All events so far.
    public var allEvents: [MQTTClientEvent] {
        condition.lock()
        defer { condition.unlock() }
        return events
    }

    /// The trace lines so far.
    public var trace: [String] {
        condition.lock()
        defer { condition.unlock() }
        return traceLines
    }

    /// The next event not yet returned by `next`/`waitFor`, waiting up to `timeout`.
    public func next(timeout: TimeInterval = 5) throws -> MQTTClientEvent {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while cursor >= events.count {
            guard condition.wait(until: deadline) else {
                throw Timeout(description: "no event within \(timeout) s (events so far: \(events))")
            }
        }
        cursor += 1
        return events[cursor - 1]
    }

    /// Skips events until one matches, waiting up to `timeout`; returns it.
    @discardableResult
    public func waitFor(
        timeout: TimeInterval = 5, _ what: String = "event", _ matches: (MQTTClientEvent) -> Bool
    ) throws -> MQTTClientEvent {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            while cursor < events.count {
                cursor += 1
                if matches(events[cursor - 1]) { return events[cursor - 1] }
            }
            guard condition.wait(until: deadline) else {
                throw Timeout(description: "\(what) not within \(timeout) s (events: \(events.suffix(10)))")
            }
        }
    }

    /// Waits until `count` events matching `matches` have been recorded in total.
    public func waitForCount(
        _ count: Int, timeout: TimeInterval = 30, _ matches: (MQTTClientEvent) -> Bool
    ) throws -> [MQTTClientEvent] {
        let deadline = Date().addingTimeInterval(timeout)
        condition.lock()
        defer { condition.unlock() }
        while true {
            let matching = events.filter(matches)
            if matching.count >= count { return matching }
            guard condition.wait(until: deadline) else {
                throw Timeout(description: "only \(matching.count) of \(count) events within \(timeout) s")
            }
        }
    }

    /// Events recorded after the last `next`/`waitFor`, without consuming them.
    public var unconsumed: [MQTTClientEvent] {
        condition.lock()
        defer { condition.unlock() }
        return Array(events[cursor...])
    }

    /// Connects to 127.0.0.1:port (or `host`).
    public func connect(
        host: String = "127.0.0.1", port: Int, tls: MQTTTLSOptions? = nil, options: MQTTConnectOptions
    ) throws {
        try run { try $0.connect(host: host, port: port, tls: tls, options: options) }
    }
}
