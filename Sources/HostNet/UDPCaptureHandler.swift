import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--pcap` for UDP: one pcap record per datagram a HostNet datagram channel reads or
/// sends, written through the same sink as the TCP captures (`PacketCapture`), so TCP
/// and UDP records interleave in one file.
///
/// A record writer of our own, because swift-nio-extras' `NIOWritePCAPHandler` only
/// synthesises TCP segments (its documentation: it writes the data "as synthesized TCP
/// packet captures") and has no UDP mode. It follows the libpcap file format
/// (https://wiki.wireshark.org/Development/LibpcapFileFormat, `pcap-savefile(5)`) exactly
/// as the sink's global header declares it (`NIOWritePCAPHandler.pcapFileHeader`):
///
/// - the byte order of the record header is the host's (the global header's magic
///   `0xa1b2c3d4` is written in host order, so readers detect it; little-endian on the
///   x86-64 and arm64 machines this runs on): `ts_sec`, `ts_usec` (`gettimeofday`, as
///   `NIOWritePCAPHandler`), `incl_len`, `orig_len` (equal: nothing is truncated);
/// - link type 0 (`LINKTYPE_NULL`, BSD loopback): a 4-byte address family in host order,
///   2 for IPv4 and 24 for IPv6 (the values `NIOWritePCAPHandler` writes);
/// - a synthesised IPv4 header (20 bytes, protocol 17, DF, TTL 64, correct header
///   checksum) or IPv6 header (40 bytes, next header 17, hop limit 64), in network order;
/// - the UDP header (ports, length) with its checksum computed over the pseudo-header,
///   for IPv4 as well (where 0 would be allowed) as for IPv6 (where it is mandatory);
/// - the payload.
///
/// Addresses: the peer is the envelope's remote address; the local end is the channel's
/// `localAddress`. A socket bound to the unspecified address (0.0.0.0 or ::) has no
/// single source address, so the local end is recorded as the loopback address of the
/// peer's family (127.0.0.1 or ::1) with the socket's port; the same when the families
/// differ. Non-IP addresses (Unix sockets) are not recorded.
///
/// Sent datagrams are recorded when the write succeeds (when the kernel took them), so
/// a datagram that fails to send is not in the file. Writes may be
/// `AddressedEnvelope<ByteBuffer>` or, on a connected channel, `ByteBuffer` (recorded
/// with the channel's `remoteAddress`); anything else passes through unrecorded.
final class UDPCaptureHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias InboundOut = AddressedEnvelope<ByteBuffer>
    typealias OutboundIn = Any
    typealias OutboundOut = Any

    private let sink: @Sendable (ByteBuffer) -> Void

    init(sink: @escaping @Sendable (ByteBuffer) -> Void) {
        self.sink = sink
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        if let local = context.channel.localAddress,
           let record = Self.record(local: local, remote: envelope.remoteAddress, payload: envelope.data, outbound: false) {
            sink(record)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let value = unwrapOutboundIn(data)
        var datagram: (remote: SocketAddress, payload: ByteBuffer)?
        if let envelope = value as? AddressedEnvelope<ByteBuffer> {
            datagram = (envelope.remoteAddress, envelope.data)
        } else if case .byteBuffer(let buffer)? = value as? IOData, let remote = context.channel.remoteAddress {
            datagram = (remote, buffer)
        }
        guard let datagram else {
            context.write(data, promise: promise)
            return
        }
        let written = promise ?? context.eventLoop.makePromise()
        let channel = context.channel
        let sink = self.sink
        written.futureResult.whenSuccess {
            // The local address is known by now (the socket has sent from it).
            guard let local = channel.localAddress,
                  let record = Self.record(local: local, remote: datagram.remote, payload: datagram.payload, outbound: true)
            else { return }
            sink(record)
        }
        context.write(data, promise: written)
    }

    /// One complete pcap record (record header and packet) for a datagram between
    /// `local` and `remote`; nil for non-IP addresses or a datagram too long for IP.
    static func record(
        local: SocketAddress, remote: SocketAddress, payload: ByteBuffer, outbound: Bool,
        time: timeval? = nil
    ) -> ByteBuffer? {
        guard let remoteIP = IPAddress(remote), var localIP = IPAddress(local),
              let remotePort = remote.port, let localPort = local.port else { return nil }
        if localIP.isUnspecified || localIP.isV4 != remoteIP.isV4 { localIP = .loopback(v4: remoteIP.isV4) }
        let (source, destination) = outbound ? (localIP, remoteIP) : (remoteIP, localIP)
        let (sourcePort, destinationPort) = outbound ? (localPort, remotePort) : (remotePort, localPort)

        let udpLength = 8 + payload.readableBytes
        let ipHeaderLength = remoteIP.isV4 ? 20 : 40
        // IPv4: the total length includes the header; IPv6: the payload length does not.
        guard udpLength + (remoteIP.isV4 ? ipHeaderLength : 0) <= Int(UInt16.max) else { return nil }
        let packetLength = 4 + ipHeaderLength + udpLength

        var now = time ?? timeval()
        if time == nil { gettimeofday(&now, nil) }
        var buffer = ByteBufferAllocator().buffer(capacity: 16 + packetLength)
        // Record header, host byte order as the global header.
        buffer.writeInteger(UInt32(truncatingIfNeeded: now.tv_sec), endianness: .host)
        buffer.writeInteger(UInt32(truncatingIfNeeded: now.tv_usec), endianness: .host)
        buffer.writeInteger(UInt32(packetLength), endianness: .host)  // incl_len
        buffer.writeInteger(UInt32(packetLength), endianness: .host)  // orig_len
        // LINKTYPE_NULL: the address family, host byte order.
        buffer.writeInteger(UInt32(remoteIP.isV4 ? 2 : 24), endianness: .host)

        if remoteIP.isV4 {
            var header: [UInt8] = [
                0x45, 0,  // version 4, IHL 5; DSCP/ECN
                UInt8(truncatingIfNeeded: (20 + udpLength) >> 8), UInt8(truncatingIfNeeded: 20 + udpLength),
                0, 0, 0x40, 0,  // identification; flags (don't fragment), fragment offset
                64, 17, 0, 0,  // TTL, protocol UDP, checksum (below)
            ]
            header += source.bytes
            header += destination.bytes
            let checksum = ~fold(onesComplementSum(header))
            header[10] = UInt8(checksum >> 8)
            header[11] = UInt8(checksum & 0xFF)
            buffer.writeBytes(header)
        } else {
            buffer.writeInteger(UInt32(6 << 28))  // version 6, traffic class and flow label 0
            buffer.writeInteger(UInt16(udpLength))  // payload length
            buffer.writeInteger(UInt8(17))  // next header: UDP
            buffer.writeInteger(UInt8(64))  // hop limit
            buffer.writeBytes(source.bytes)
            buffer.writeBytes(destination.bytes)
        }

        // UDP header; the checksum covers the pseudo-header, the header and the payload.
        var udpHeader: [UInt8] = [
            UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xFF),
            UInt8(truncatingIfNeeded: udpLength >> 8), UInt8(truncatingIfNeeded: udpLength), 0, 0,
        ]
        var pseudo = source.bytes + destination.bytes
        if remoteIP.isV4 {
            pseudo += [0, 17, UInt8(truncatingIfNeeded: udpLength >> 8), UInt8(truncatingIfNeeded: udpLength)]
        } else {
            pseudo += [0, 0, UInt8(truncatingIfNeeded: udpLength >> 8), UInt8(truncatingIfNeeded: udpLength), 0, 0, 0, 17]
        }
        var sum = onesComplementSum(pseudo) &+ onesComplementSum(udpHeader)
        sum = payload.withUnsafeReadableBytes { sum &+ onesComplementSum($0) }
        var checksum = ~fold(sum)
        if checksum == 0 { checksum = 0xFFFF }  // 0 means "no checksum" (RFC 768)
        udpHeader[6] = UInt8(checksum >> 8)
        udpHeader[7] = UInt8(checksum & 0xFF)
        buffer.writeBytes(udpHeader)
        buffer.writeImmutableBuffer(payload)
        return buffer
    }

    /// An IP address's bytes in network order.
    struct IPAddress {
        var bytes: [UInt8]
        var isV4: Bool { bytes.count == 4 }
        var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }

        init?(_ address: SocketAddress) {
            switch address {
            case .v4(let v4):
                bytes = withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
            case .v6(let v6):
                bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            default:
                return nil
            }
        }

        private init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        static func loopback(v4: Bool) -> IPAddress {
            IPAddress(bytes: v4 ? [127, 0, 0, 1] : Array(repeating: 0, count: 15) + [1])
        }
    }
}

/// The 16-bit one's-complement sum of `bytes` (big-endian words, an odd last byte padded
/// with zero), folded to 16 bits (RFC 1071).
private func onesComplementSum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
    var sum: UInt32 = 0
    var high: UInt8?
    for byte in bytes {
        if let first = high {
            sum &+= UInt32(first) << 8 | UInt32(byte)
            high = nil
            if sum > 0xFFFF_0000 { sum = UInt32(fold(sum)) }
        } else {
            high = byte
        }
    }
    if let first = high { sum &+= UInt32(first) << 8 }
    return UInt32(fold(sum))
}

private func fold(_ value: UInt32) -> UInt16 {
    var sum = value
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return UInt16(sum)
}
