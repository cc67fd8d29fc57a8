import NIOConcurrencyHelpers
import NIOCore
import NIOExtras

/// A pcap file (`--pcap FILE`) that every connection HostNet makes or accepts, and every
/// UDP datagram its datagram channels send or receive, is written to, readable by
/// `tcpdump -r` and Wireshark.
///
/// TLS connections are captured on the plaintext side (after decryption, before
/// encryption): the file is for debugging what the device script sends and receives,
/// and ciphertext without the session keys shows nothing of that. The TCP/IP headers
/// are synthesised by swift-nio-extras' `NIOWritePCAPHandler` from the real addresses;
/// UDP records by `UDPCaptureHandler` (the extras handler synthesises TCP only), through
/// the same sink, so TCP and UDP records interleave in one file.
///
/// Thread-safe. Call `close()` once before the process exits, or the file's tail may be
/// lost; writes after `close()` are dropped.
public final class PacketCapture: Sendable {
    public let path: String
    private let sink: NIOWritePCAPHandler.SynchronizedFileSink
    private let closed = NIOLockedValueBox(false)

    /// Creates (or truncates) the file at `path` and writes the pcap header.
    public init(path: String, errorHandler: @escaping @Sendable (any Error) -> Void = { _ in }) throws {
        self.path = path
        self.sink = try NIOWritePCAPHandler.SynchronizedFileSink.fileSinkWritingToFile(
            path: path, fileWritingMode: .createNewPCAPFile, errorHandler: errorHandler)
    }

    /// A capture handler for one channel; put it where the plaintext flows.
    func makeHandler(mode: NIOWritePCAPHandler.Mode) -> NIOWritePCAPHandler {
        NIOWritePCAPHandler(mode: mode) { [self] buffer in
            write(buffer)
        }
    }

    /// A capture handler for one datagram channel (see `UDPCaptureHandler`); put it first
    /// in the pipeline, next to the socket.
    func makeDatagramHandler() -> UDPCaptureHandler {
        UDPCaptureHandler { [self] record in
            write(record)
        }
    }

    /// Appends `buffer`, one or more complete pcap records, to the file.
    private func write(_ buffer: ByteBuffer) {
        closed.withLockedValue { isClosed in
            if !isClosed { sink.write(buffer: buffer) }
        }
    }

    /// Writes what is pending and closes the file. Blocks: never call it on an event loop.
    public func close() {
        let wasClosed = closed.withLockedValue { isClosed in
            defer { isClosed = true }
            return isClosed
        }
        guard !wasClosed else { return }
        try? sink.syncClose()
    }
}
