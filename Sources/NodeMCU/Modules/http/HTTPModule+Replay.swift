import NIOCore

extension HTTPModule {
    /// Fuzzing entry point (fuzz/Sources/HTTPResponseFuzzer): starts a GET of `url` as
    /// `http.get(url, nil)` does, with whatever callback the module's slot holds, but every
    /// connection (the first and each redirect's) is made by `connect` instead of HostNet:
    /// it gets the target's host and port and the request's pipeline set-up, and returns
    /// the channel it made with that set-up (e.g. an `EmbeddedChannel`), or nil for a
    /// refused connection. Returns false, starting nothing, if `url` is not one the module
    /// would request.
    @discardableResult
    public func replay(
        url: String,
        connect: @escaping (_ host: String, _ port: Int, _ configure: (any Channel) throws -> Void) -> (any Channel)?
    ) -> Bool {
        guard let target = HTTPTarget(url) else { return false }
        let exchange = HTTPExchange(module: self, method: "GET", headers: [], body: nil)
        exchange.connector = { target, configure in connect(target.host, target.port, configure) }
        inFlight += 1
        runtime.retain(exchange)
        exchange.start(target, redirects: 0)
        return true
    }
}
