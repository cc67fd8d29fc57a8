import Dispatch
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// TCP keepalive for accepted connections: probes start after `idle` seconds without
/// traffic, every `interval` seconds, and the connection is dropped after `count`
/// unanswered probes. (The firmware's `net.createServer` timeout: idle = timeout, one
/// probe, 10 s interval.)
public struct TCPKeepalive: Sendable, Equatable {
    public var idle: Int
    public var interval: Int
    public var count: Int

    public init(idle: Int, interval: Int, count: Int) {
        self.idle = idle
        self.interval = interval
        self.count = count
    }
}

extension HostNetwork {
    /// Resolves `host` (after remapping its name) to an IPv4 address in dotted-quad form,
    /// without connecting; nil when it does not resolve. An IPv4 literal completes at once
    /// (the future is already succeeded, so the caller can deliver inside its own call);
    /// a name is looked up with the system resolver off the loop.
    public func resolveIPv4(host: String) -> EventLoopFuture<String?> {
        eventLoop.preconditionInEventLoop()
        // Only host rules can apply: a lookup has no port.
        let target = remap.apply(host: host, port: 0).host
        if let faults, faults.failsDNS(host, target: target) {
            faults.record("DNS lookup of \(host) failed (injected)")
            return eventLoop.makeSucceededFuture(nil)
        }
        if let literal = Self.ipv4Literal(target) { return eventLoop.makeSucceededFuture(literal) }
        let promise = eventLoop.makePromise(of: String?.self)
        // Virtual time waits for the lookup (DeviceClock, rule 3).
        clock.beginNetworkOperation()
        DispatchQueue.global().async { promise.succeed(Self.lookupIPv4(target)) }
        let clock = NIOLoopBound(self.clock, eventLoop: eventLoop)
        return promise.futureResult.always { _ in clock.value.endNetworkOperation() }
    }

    /// `text` if it is an IPv4 literal (dotted quad), normalised; else nil.
    public static func ipv4Literal(_ text: String) -> String? {
        var address = in_addr()
        guard inet_pton(AF_INET, text, &address) == 1 else { return nil }
        return dottedQuad(address)
    }

    private static func dottedQuad(_ address: in_addr) -> String {
        let value = UInt32(bigEndian: address.s_addr)
        return "\(value >> 24).\((value >> 16) & 255).\((value >> 8) & 255).\(value & 255)"
    }

    private static func lookupIPv4(_ name: String) -> String? {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(name, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        guard let raw = first.pointee.ai_addr else { return nil }
        return raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { dottedQuad($0.pointee.sin_addr) }
    }

    /// Where a datagram for `ip:port` really goes (after remapping).
    public func datagramTarget(ip: String, port: Int) throws -> SocketAddress {
        var (host, targetPort) = remap.apply(host: ip, port: port)
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return try SocketAddress(ipAddress: host, port: targetPort)
    }

    /// Stops or resumes reading from `channel`: while stopped, the kernel's receive buffer
    /// fills and the peer's window closes (real backpressure, as lwIP's withheld
    /// `tcp_recved`). Bytes of a read already under way are still delivered.
    public func setReading(_ channel: any Channel, _ reading: Bool) {
        channel.eventLoop.preconditionInEventLoop()
        _ = channel.setOption(ChannelOptions.autoRead, value: reading)
        if reading { channel.read() }
    }

    /// Sets TCP keepalive on a connected channel.
    public func setKeepalive(_ channel: any Channel, _ keepalive: TCPKeepalive) {
        _ = channel.setOption(ChannelOptions.socketOption(.so_keepalive), value: 1)
        _ = channel.setOption(ChannelOptions.tcpOption(.init(rawValue: TCP_KEEPIDLE)), value: SocketOptionValue(max(1, keepalive.idle)))
        _ = channel.setOption(ChannelOptions.tcpOption(.init(rawValue: TCP_KEEPINTVL)), value: SocketOptionValue(max(1, keepalive.interval)))
        _ = channel.setOption(ChannelOptions.tcpOption(.init(rawValue: TCP_KEEPCNT)), value: SocketOptionValue(max(1, keepalive.count)))
    }

    /// The IP time-to-live of `channel`'s socket, after setting it to `value` if given;
    /// nil if the socket has none (closed).
    public func timeToLive(_ channel: any Channel, set value: Int? = nil) -> Int? {
        channel.eventLoop.preconditionInEventLoop()
        let option = ChannelOptions.Types.SocketOption(level: .init(rawValue: Int32(IPPROTO_IP)), name: .init(rawValue: IP_TTL))
        guard let options = channel.syncOptions else { return nil }
        if let value { try? options.setOption(option, value: SocketOptionValue(value)) }
        guard let ttl: SocketOptionValue = try? options.getOption(option) else { return nil }
        return Int(ttl)
    }

    /// Joins (or leaves) the IPv4 multicast group `group` on a UDP channel, on the
    /// interface with address `interfaceIP` (nil or 0.0.0.0: the system's choice).
    public func setMulticastMembership(
        _ channel: any Channel, group: String, interfaceIP: String?, join: Bool
    ) -> EventLoopFuture<Void> {
        guard let multicast = channel as? MulticastChannel,
              let groupAddress = try? SocketAddress(ipAddress: group, port: 0) else {
            return eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        var device: NIONetworkDevice?
        if let interfaceIP, interfaceIP != "0.0.0.0" {
            device = try? System.enumerateDevices().first { $0.address?.ipAddress == interfaceIP }
        }
        return join ? multicast.joinGroup(groupAddress, device: device) : multicast.leaveGroup(groupAddress, device: device)
    }
}
