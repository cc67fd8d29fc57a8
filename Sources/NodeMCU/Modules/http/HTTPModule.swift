import HostNet
import LuaBridge
import NIOCore
import NIOHTTP1

/// Lua: the `http` module (more-modules §12), both profiles: `http.get`, `post`, `put`,
/// `delete`, `request`, `http.OK`, `http.ERROR`.
///
/// One callback slot for the whole module: a call with a function replaces it, and the
/// first request to finish takes it (calls and clears it). Requests go through HostNet
/// (`--remap`, `--pcap`, TLS trust as for mqtt), with NIO's HTTP/1 encoder and decoder.
/// Reproduced limits: whole response over 8191 bytes or no completion within 60 s →
/// `cb(-1, nil, nil)` (with a stderr warning for the size), up to 20 redirects.
/// Followed: the spec; `docs/modules/http.md` and `app/modules/http.c` of
/// nodemcu/nodemcu-firmware for the request headers.
public final class HTTPModule: LuaModule {
    public static let name = "http"

    static let responseLimit = 8191
    static let timeout = TimeAmount.seconds(60)
    static let maxRedirects = 20

    unowned let runtime: Runtime
    /// The module's one callback slot.
    var callback: LuaRef?
    var inFlight = 0

    public init(runtime: Runtime) {
        self.runtime = runtime
    }

    public func register(in table: inout LuaModuleTable) {
        table.function("get") { [unowned self] lua throws(LuaError) in try request(lua, method: "GET", headers: 2, body: nil, callback: 3) }
        table.function("post") { [unowned self] lua throws(LuaError) in try request(lua, method: "POST", headers: 2, body: 3, callback: 4) }
        table.function("put") { [unowned self] lua throws(LuaError) in try request(lua, method: "PUT", headers: 2, body: 3, callback: 4) }
        table.function("delete") { [unowned self] lua throws(LuaError) in try request(lua, method: "DELETE", headers: 2, body: 3, callback: 4) }
        table.function("request") { [unowned self] lua throws(LuaError) in try customRequest(lua) }
        table.integer("OK", 0)
        table.integer("ERROR", -1)
    }

    /// Lua: http.request(url, method, headers, body, callback)
    private func customRequest(_ lua: LuaState) throws(LuaError) -> Int32 {
        guard let method = lua.string(at: 2) else { throw lua.typeError(2, expected: "string") }
        return try request(lua, method: method, headers: 3, body: 4, callback: 5)
    }

    /// Lua: http.get(url, headers, callback) / http.post|put|delete(url, headers, body, callback)
    private func request(_ lua: LuaState, method: String, headers: Int32, body: Int32?, callback index: Int32) throws(LuaError) -> Int32 {
        guard let url = lua.string(at: 1) else { throw lua.typeError(1, expected: "string") }
        let headerText = lua.isStringLike(headers) ? lua.bytes(at: headers) ?? [] : []
        var bodyBytes: [UInt8]?
        if let body, lua.isStringLike(body) {
            // Sent up to its first NUL (the firmware treats it as a C string).
            bodyBytes = Array((lua.bytes(at: body) ?? []).prefix { $0 != 0 })
        }
        if lua.isFunction(index) {
            if let callback { lua.unref(callback) }
            callback = lua.ref(at: index)
        }
        guard let target = HTTPTarget(url) else { return 0 }  // silently dropped, as on the device
        if inFlight > 0 {
            runtime.quirkWarnings.warn("http: a request starts while another is in flight: the first to finish calls the last callback given, the other none (firmware \(runtime.profile.rawValue))", on: lua)
        }
        let exchange = HTTPExchange(
            module: self, method: method, headers: HTTPExchange.parseHeaders(headerText), body: bodyBytes)
        inFlight += 1
        runtime.retain(exchange)
        exchange.start(target, redirects: 0)
        return 0
    }

    /// A request is over: the slot's callback (if any) gets the result and the slot is cleared.
    func finish(_ exchange: HTTPExchange, code: Int, body: [UInt8]?, headers: [(String, String)]) {
        inFlight -= 1
        runtime.release(exchange)
        guard runtime.isCurrent(exchange.generation), let callback else { return }
        self.callback = nil
        let lua = runtime.lua
        lua.push(callback)
        lua.unref(callback)
        lua.push(code)
        guard code >= 0, var body else {
            lua.pushNil()
            lua.pushNil()
            runtime.callback(.network, arguments: 3)
            return
        }
        if runtime.profile == .v2_2, let nul = body.firstIndex(of: 0) { body = Array(body[..<nul]) }
        lua.push(body)
        lua.newTable(fieldCapacity: Int32(headers.count))
        for (name, value) in headers {
            lua.push(value)
            lua.setField(name, in: -2)
        }
        runtime.callback(.network, arguments: 3)
    }
}

/// A parsed `http://` / `https://` URL.
struct HTTPTarget {
    var secure: Bool
    var host: String
    var port: Int
    var path: String

    init?(_ url: String) {
        let rest: Substring
        if url.hasPrefix("http://") {
            secure = false
            rest = url.dropFirst(7)
        } else if url.hasPrefix("https://") {
            secure = true
            rest = url.dropFirst(8)
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" }
        path = rest.count > authority.count ? String(rest.dropFirst(authority.count)) : "/"
        if let colon = authority.firstIndex(of: ":") {
            host = String(authority[..<colon])
            guard let number = Int(authority[authority.index(after: colon)...]), number > 0, number <= 65535 else { return nil }
            port = number
        } else {
            host = String(authority)
            port = secure ? 443 : 80
        }
        guard !host.isEmpty, host.utf8.count < 128 else { return nil }
    }

    /// `Host:` value: the port unless it is the scheme's default.
    var hostHeader: String { port == (secure ? 443 : 80) ? host : "\(host):\(port)" }

    /// Where a `Location` points from here: absolute, `/path`, or relative to the directory.
    func resolving(_ location: String) -> HTTPTarget? {
        if location.hasPrefix("http://") || location.hasPrefix("https://") { return HTTPTarget(location) }
        var next = self
        if location.hasPrefix("/") {
            next.path = location
        } else {
            let directory = path.split(separator: "?", maxSplits: 1).first.map { String($0) } ?? "/"
            let base = directory.hasSuffix("/") ? directory : String(directory[...(directory.lastIndex(of: "/") ?? directory.startIndex)])
            next.path = (base.hasPrefix("/") ? base : "/" + base) + location
        }
        return next
    }
}
