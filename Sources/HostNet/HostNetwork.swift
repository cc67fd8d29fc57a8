import Board
import NIOCore

/// The network of one runtime: everything a module needs to open sockets, and the only
/// place that creates NIO bootstraps.
///
/// It holds the event loop and the device clock (every connect timeout and handshake
/// timeout runs on the clock), the address remapping for outgoing connections and
/// listening ports, the optional packet capture, the flush scheduler and busy poll that
/// the connections of this loop share, and the default TLS settings.
///
/// - `connect(host:port:tls:timeout:channelInitializer:)`: DNS → TCP → TLS, one error
///   type (`HostConnectError`);
/// - `listen(port:backlog:childInitializer:accepted:)`: a TCP server whose accepted
///   channels are handed over in accept order;
/// - `bindUDP(host:port:initializer:)` and `connectUDP(host:port:initializer:)`;
/// - `CoalescingWriter` for one flush per tick with backpressure.
///
/// Use only on `eventLoop`.
public final class HostNetwork {
    /// What the command line decides about the network.
    public struct Configuration: Sendable {
        /// `--remap`: outgoing connections and listening ports.
        public var remap: AddressRemap
        /// Listen on all interfaces instead of 127.0.0.1 only.
        public var expose: Bool
        /// `--busy-poll`: see `ReadBusyPoll` (zero: off).
        public var busyPollWindow: TimeAmount
        /// TLS settings a connection uses when its module gives none.
        public var defaultTLS: TLSSettings

        public init(
            remap: AddressRemap = AddressRemap(), expose: Bool = false, busyPollWindow: TimeAmount = .zero,
            defaultTLS: TLSSettings = TLSSettings()
        ) {
            self.remap = remap
            self.expose = expose
            self.busyPollWindow = busyPollWindow
            self.defaultTLS = defaultTLS
        }
    }

    public let eventLoop: any EventLoop
    /// The runtime's clock: connect and handshake timeouts run on it.
    public let clock: DeviceClock
    public let configuration: Configuration
    public var remap: AddressRemap { configuration.remap }
    /// `--pcap`: every connection made or accepted, and every UDP datagram sent or
    /// received, is written here.
    public let capture: PacketCapture?
    /// Shared by the writers of this loop (see `FlushScheduler`).
    public let flushScheduler: FlushScheduler
    /// Shared by the connections of this loop; nil when `busyPollWindow` is zero.
    public let readBusyPoll: ReadBusyPoll?
    /// Messages for the user, e.g. `listening port 80 is 127.0.0.1:40123` (the command
    /// line prints them on stderr with its prefix).
    public var diagnostics: (String) -> Void
    /// Fault injection (scenarios, tests): set before the first connection; every
    /// pipeline built afterwards gets its handler (see `FaultInjector`).
    public var faults: FaultInjector?

    /// The receive buffers of every TCP connection (made or accepted): NIO's adaptive
    /// allocator, starting at 256 bytes instead of NIO's 2048. Each channel keeps its last
    /// receive buffer for reuse, so the initial size is what an idle connection holds
    /// (an MQTT client mostly reads 2–5 byte acks). A read that fills the buffer doubles it,
    /// up to 64 KiB, so a burst reaches full size within a few reads
    /// (bench/NOTES.md, session 7).
    static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65_536)

    /// Device ports whose mapping has been reported.
    var reportedListenPorts = Set<Int>()

    public init(
        eventLoop: any EventLoop, clock: DeviceClock? = nil, configuration: Configuration = Configuration(),
        capture: PacketCapture? = nil, diagnostics: @escaping (String) -> Void = { _ in }
    ) {
        self.eventLoop = eventLoop
        self.clock = clock ?? DeviceClock(eventLoop: eventLoop)
        self.configuration = configuration
        self.capture = capture
        self.flushScheduler = FlushScheduler(eventLoop: eventLoop)
        self.readBusyPoll = configuration.busyPollWindow > .zero
            ? ReadBusyPoll(eventLoop: eventLoop, window: configuration.busyPollWindow) : nil
        self.diagnostics = diagnostics
    }
}
