import Board
import NIOCore

/// Applies a `FaultInjector`'s faults to one connection; HostNet puts it into every
/// pipeline it builds while fault injection is on (on the plaintext side of TLS).
///
/// Inbound: a half-open connection drops what arrives; `cutAfter` truncates the read
/// that reaches the limit and closes; `delay` holds each read for the delay (device
/// time) and then delivers it with its own read-complete; `fragment` delivers one byte
/// per read, one read per loop tick. Outbound: half-open completes writes without
/// sending; `delay` holds each write, then writes and flushes it (a close waits for what
/// is held, as the kernel sends queued data before the FIN); `cutAfter` counts too.
final class FaultInjectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private weak var injector: FaultInjector?
    let endpoint: FaultInjector.Endpoint
    private(set) var rules = FaultInjector.Rules()
    /// Half-open: every byte is lost from now on.
    var blackholed = false {
        didSet {
            guard blackholed else { return }
            discardHeld()
            // The peer's FIN must not close the socket either (it would be lost on a
            // half-open link): it becomes an input-closed event, which is dropped below.
            _ = context?.channel.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        }
    }
    private var context: ChannelHandlerContext?
    /// An accepted connection refused by a rule: nothing reaches the handlers after us.
    private var refusedConnection = false
    private var closed = false
    /// Bytes left before the cut (nil: no cut rule).
    private var cutRemaining: Int?
    private var closeWhenDrained = false
    private var heldInbound = 0
    private var fragments: [UInt8] = []
    private var fragmentIndex = 0
    private var draining = false
    private var heldOutbound: [(IOData, EventLoopPromise<Void>?)] = []
    private var heldClose: EventLoopPromise<Void>?
    /// Bytes that arrived from the peer, and that the device wrote (before any fault).
    private(set) var bytesIn = 0
    private(set) var bytesOut = 0
    private var flushedOut = 0

    private let clock: DeviceClock

    /// Creation order.
    let serial: Int

    init(injector: FaultInjector, endpoint: FaultInjector.Endpoint, serial: Int) {
        self.serial = serial
        self.injector = injector
        self.clock = injector.clock
        self.endpoint = endpoint
    }

    func update(_ rules: FaultInjector.Rules) {
        self.rules = rules
        if rules.cutAfter == nil { cutRemaining = nil }
    }

    func resetCutCounter() { cutRemaining = nil }

    /// `drop`: closes at once; what is held is discarded.
    func dropNow() {
        guard let context, !closed else { return }
        discardHeld()
        context.close(promise: nil)
    }

    private func discardHeld() {
        fragments = []
        fragmentIndex = 0
        let held = heldOutbound
        heldOutbound = []
        for (_, promise) in held { promise?.succeed() }
    }

    // MARK: Life

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        rules = injector?.rules(for: endpoint) ?? FaultInjector.Rules()
        injector?.register(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        injector?.unregister(self)
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        if endpoint.accepted, let injector, injector.isRefused(endpoint) {
            refusedConnection = true
            injector.record("connection from \(endpoint) refused (injected)")
            context.close(promise: nil)
            return
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        injector?.unregister(self)
        let held = heldOutbound
        heldOutbound = []
        for (_, promise) in held { promise?.fail(ChannelError.ioOnClosedChannel) }
        heldClose?.fail(ChannelError.alreadyClosed)
        heldClose = nil
        if !refusedConnection { context.fireChannelInactive() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !refusedConnection { context.fireErrorCaught(error) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if blackholed, let event = event as? ChannelEvent, event == .inputClosed { return }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refusedConnection || closed || cutRemaining == 0 { return }
        if blackholed {
            bytesIn += unwrapInboundIn(data).readableBytes
            return
        }
        var buffer = unwrapInboundIn(data)
        bytesIn += buffer.readableBytes
        let cut = consumeCutBudget(&buffer)
        deliverInbound(buffer)
        if cut { cutNow(context: context) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Always passed on (held and fragmented reads get their own as well): a handler
        // that saw a read before a fault began waits for its read-complete to flush.
        if refusedConnection { return }
        context.fireChannelReadComplete()
    }

    private func deliverInbound(_ buffer: ByteBuffer) {
        if rules.delay > .zero {
            heldInbound += 1
            clock.schedule(in: rules.delay) { [self] in
                heldInbound -= 1
                release(buffer, completing: true)
            }
        } else {
            release(buffer, completing: false)
        }
    }

    private func release(_ buffer: ByteBuffer, completing: Bool) {
        guard let context, !blackholed, !closed else { return }
        if rules.fragment {
            fragments.append(contentsOf: buffer.readableBytesView)
            drainFragments()
            return
        }
        context.fireChannelRead(wrapInboundOut(buffer))
        if completing { context.fireChannelReadComplete() }
        closeIfDrained()
    }

    private func drainFragments() {
        guard !draining, let context else { return }
        draining = true
        context.eventLoop.assumeIsolated().execute { [self] in
            draining = false
            guard let context = self.context, !blackholed, !closed, fragmentIndex < fragments.count else { return }
            var one = context.channel.allocator.buffer(capacity: 1)
            one.writeInteger(fragments[fragmentIndex])
            fragmentIndex += 1
            if fragmentIndex == fragments.count {
                fragments = []
                fragmentIndex = 0
            }
            context.fireChannelRead(wrapInboundOut(one))
            context.fireChannelReadComplete()
            if fragmentIndex < fragments.count { drainFragments() } else { closeIfDrained() }
        }
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if refusedConnection || closed {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        bytesOut += unwrapOutboundIn(data).readableBytes
        if blackholed {
            promise?.succeed()
            return
        }
        if cutRemaining == 0 {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        var data = unwrapOutboundIn(data)
        var cut = false
        if case .byteBuffer(var buffer) = data {
            cut = consumeCutBudget(&buffer)
            data = .byteBuffer(buffer)
        }
        if rules.delay > .zero || !heldOutbound.isEmpty {
            heldOutbound.append((data, promise))
            clock.schedule(in: rules.delay) { [self] in releaseOutbound() }
        } else {
            context.write(wrapOutboundOut(data), promise: promise)
        }
        if cut {
            context.flush()
            cutNow(context: context)
        }
    }

    func flush(context: ChannelHandlerContext) {
        context.flush()
        if bytesOut != flushedOut {
            flushedOut = bytesOut
            if !endpoint.accepted { injector?.onOutboundFlush?(endpoint) }
        }
    }

    private func releaseOutbound() {
        guard let context, !heldOutbound.isEmpty else { return }
        let (data, promise) = heldOutbound.removeFirst()
        context.writeAndFlush(wrapOutboundOut(data), promise: promise)
        if heldOutbound.isEmpty, let heldClose {
            self.heldClose = nil
            context.close(promise: heldClose)
        }
        closeIfDrained()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .all, !heldOutbound.isEmpty, !blackholed {
            // Sent before the FIN, as the kernel does with queued data.
            if let heldClose {
                heldClose.futureResult.cascade(to: promise)
                return
            }
            heldClose = promise ?? context.eventLoop.makePromise()
            return
        }
        context.close(mode: mode, promise: promise)
    }

    // MARK: Cut

    /// Counts `buffer` against the cut rule, truncating it at the limit; true when the
    /// limit is reached.
    private func consumeCutBudget(_ buffer: inout ByteBuffer) -> Bool {
        guard let limit = rules.cutAfter else { return false }
        let remaining = cutRemaining ?? limit
        if buffer.readableBytes >= remaining {
            buffer = buffer.getSlice(at: buffer.readerIndex, length: remaining) ?? buffer
            cutRemaining = 0
            return true
        }
        cutRemaining = remaining - buffer.readableBytes
        return false
    }

    private func cutNow(context: ChannelHandlerContext) {
        injector?.record("cut \(endpoint) after \(rules.cutAfter ?? 0) bytes")
        closeWhenDrained = true
        closeIfDrained()
    }

    private func closeIfDrained() {
        guard closeWhenDrained, heldInbound == 0, !draining, heldOutbound.isEmpty, let context, !closed else { return }
        closeWhenDrained = false
        context.close(promise: nil)
    }
}
