import Board
import HostNet
import LuaBridge
import NIOCore
import NIOHTTP1

/// One `http.*` request, redirects included: keeps the process alive until the module's
/// callback has been given its result.
final class HTTPExchange: RuntimeHandle {
    unowned let module: HTTPModule
    let generation: Int
    let method: String
    let headers: [(String, String)]
    let body: [UInt8]?
    private var done = false
    private var timer: ClockTask?
    private var channel: (any Channel)?
    /// The request is outstanding until its result is in (virtual time waits for it).
    private var operation: NetworkOperation?
    /// Replaces HostNet's connect (fuzzing, `HTTPModule.replay`): gets each connection's
    /// target and the pipeline set-up, returns the channel it made, or nil (refused).
    var connector: ((HTTPTarget, (any Channel) throws -> Void) -> (any Channel)?)?

    init(module: HTTPModule, method: String, headers: [(String, String)], body: [UInt8]?) {
        self.module = module
        self.generation = module.runtime.generation
        self.method = method
        self.headers = headers
        self.body = body
    }

    /// The caller's header text: `Name: value\r\n` lines, kept verbatim.
    static func parseHeaders(_ text: [UInt8]) -> [(String, String)] {
        // Bytes, not Characters: "\r\n" is one Character in Swift.
        text.split(separator: 0x0A).compactMap { line in
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return nil }
            let name = String(decoding: line[..<colon], as: UTF8.self)
            let value = line[(colon + 1)...].drop { $0 == 0x20 }.filter { $0 != 0x0D }
            return (name, String(decoding: value, as: UTF8.self))
        }
    }

    func start(_ target: HTTPTarget, redirects: Int) {
        let runtime = module.runtime
        if operation == nil {
            operation = runtime.clock.makeNetworkOperation()
            operation?.isActive = true
        }
        if timer == nil {
            // 60 s from the start of the first connection, redirects included.
            timer = runtime.clock.schedule(in: HTTPModule.timeout) { [weak self] in self?.fail("no response within 60 s") }
        }
        let tls = target.secure ? TLSModule.settings(runtime: runtime) : nil
        if runtime.options.trace {
            runtime.diagnostic("trace: http: \(method) \(target.secure ? "https" : "http")://\(target.hostHeader)\(target.path)")
        }
        let configure: (any Channel) throws -> Void = { [weak self] channel in
            guard let self else { return }
            let sync = channel.pipeline.syncOperations
            try sync.addHandler(HTTPByteCounter(exchange: self))
            try sync.addHandler(HTTPRequestEncoder())
            try sync.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
            try sync.addHandler(HTTPResponseCollector(exchange: self, target: target, redirects: redirects))
        }
        if let connector {
            guard let channel = connector(target, configure) else { return fail("connection refused") }
            self.channel = channel
            return
        }
        runtime.network.connect(host: target.host, port: target.port, tls: tls, timeout: HTTPModule.timeout, channelInitializer: configure)
            .assumeIsolated().whenComplete { [weak self] result in
            switch result {
            case .success(let channel): self?.channel = channel
            case .failure(let error): self?.fail("\(error)", printed: target.secure)
            }
        }
    }

    /// The request headers in the firmware's order (spec §12).
    func requestHead(for target: HTTPTarget) -> HTTPRequestHead {
        var fields = HTTPHeaders()
        if !headers.contains(where: { $0.0.lowercased() == "host" }) { fields.add(name: "Host", value: target.hostHeader) }
        fields.add(name: "Connection", value: "close")
        for (name, value) in headers { fields.add(name: name, value: value) }
        if !headers.contains(where: { $0.0.lowercased() == "user-agent" }) { fields.add(name: "User-Agent", value: "ESP8266") }
        if let body { fields.add(name: "Content-Length", value: String(body.count)) }
        return HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: target.path, headers: fields)
    }

    func succeed(code: Int, body: [UInt8], headers: [(String, String)]) {
        guard !done else { return }
        done = true
        timer?.cancel()
        operation?.isActive = false
        channel?.close(promise: nil)
        module.finish(self, code: code, body: body, headers: headers)
    }

    func fail(_ why: String, printed: Bool = false) {
        guard !done else { return }
        done = true
        timer?.cancel()
        operation?.isActive = false
        channel?.close(promise: nil)
        if printed { module.runtime.diagnostic("http: request failed: \(why)") }
        module.finish(self, code: -1, body: nil, headers: [])
    }

    func redirect(to target: HTTPTarget, redirects: Int) {
        guard !done else { return }
        channel?.close(promise: nil)
        channel = nil
        guard redirects <= HTTPModule.maxRedirects else { return fail("more than \(HTTPModule.maxRedirects) redirects") }
        start(target, redirects: redirects)
    }

    func abortForReboot() {
        done = true
        timer?.cancel()
        operation?.isActive = false
        channel?.close(promise: nil)
    }
}

/// Counts the response's bytes: over 8191 the request fails, as on the device.
final class HTTPByteCounter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    weak var exchange: HTTPExchange?
    private var total = 0

    init(exchange: HTTPExchange) {
        self.exchange = exchange
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        total += unwrapInboundIn(data).readableBytes
        guard total <= HTTPModule.responseLimit else {
            exchange?.module.runtime.diagnostic("warning: http: the response is over \(HTTPModule.responseLimit) bytes: the device's http module gives up (code -1)")
            exchange?.fail("response too large")
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }
}

/// Sends the request once connected and collects the response (head, body, end).
final class HTTPResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    weak var exchange: HTTPExchange?
    let target: HTTPTarget
    let redirects: Int
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    private var finished = false

    init(exchange: HTTPExchange, target: HTTPTarget, redirects: Int) {
        self.exchange = exchange
        self.target = target
        self.redirects = redirects
    }

    func channelActive(context: ChannelHandlerContext) {
        guard let exchange else { return }
        context.write(wrapOutboundOut(.head(exchange.requestHead(for: target))), promise: nil)
        if let bytes = exchange.body, !bytes.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: bytes)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(let buffer):
            body += buffer.readableBytesView
        case .end:
            complete()
        }
    }

    private func complete() {
        guard let exchange, let head, !finished else { return }
        finished = true
        let code = Int(head.status.code)
        if (300...308).contains(code), let location = head.headers.first(name: "location"),
           let next = target.resolving(location) {
            exchange.redirect(to: next, redirects: redirects + 1)
            return
        }
        // Names lower-cased; the last duplicate wins.
        var names: [String] = []
        var values: [String: String] = [:]
        for (name, value) in head.headers {
            let key = name.lowercased()
            if values[key] == nil { names.append(key) }
            values[key] = value
        }
        exchange.succeed(code: code, body: body, headers: names.map { ($0, values[$0]!) })
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        exchange?.fail("\(error)")
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Closed before a complete response (or reset).
        if !finished { exchange?.fail("connection closed before the response was complete") }
        context.fireChannelInactive()
    }
}
