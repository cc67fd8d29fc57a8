import FuzzSupport
import LuaBridge
import NIOCore
import NIOEmbedded
import NodeMCU

/// http response properties checked on every input, through the module's own pipeline
/// (byte counter, NIO's HTTPRequestEncoder and HTTPResponseDecoder, our response
/// collector and redirects) on `EmbeddedChannel`s: no sockets.
/// 1. no crash;
/// 2. the callback runs exactly once, after the bytes and the close: either with the
///    documented failure `(-1, nil, nil)` or with a code 0…999, a string body of at
///    most 8191 bytes (cut at the first NUL in 2.2) and a table of lower-case string
///    header names to string values;
/// 3. every connection (the first and each redirect's) was sent a GET request.
/// Byte 0: bit 0 the profile, bits 1–7 seed the chunk sizes (1…64). The rest is split at
/// each "#NEXT#" into one response per connection: a redirect gets the next one, or a
/// refused connection when there is none.
enum HTTPFuzzing {
    static let harness = #"""
    fuzz_calls, fuzz_code, fuzz_body, fuzz_headers = 0, nil, nil, nil
    function fuzz_arm()
      fuzz_calls, fuzz_code, fuzz_body, fuzz_headers = 0, nil, nil, nil
      -- Not a URL the module requests: only fills the callback slot.
      http.get("not-a-url", nil, function(code, body, headers)
        fuzz_calls = fuzz_calls + 1
        fuzz_code, fuzz_body, fuzz_headers = code, body, headers
      end)
    end
    function fuzz_verify(_, profile)
      if fuzz_calls ~= 1 then return "callback ran " .. fuzz_calls .. " times" end
      local code, body, headers = fuzz_code, fuzz_body, fuzz_headers
      if os.getenv("FUZZ_SHOW") then
        local names = {}
        for k, v in pairs(type(headers) == "table" and headers or {}) do names[#names + 1] = k .. "=" .. v end
        io.stderr:write(string.format("code %s, body %q, headers {%s}\n", tostring(code), tostring(body), table.concat(names, ", ")))
      end
      if math.type(code) ~= "integer" then return "code is " .. tostring(code) end
      if code < 0 then
        if code ~= -1 or body ~= nil or headers ~= nil then
          return "failure is " .. tostring(code) .. ", " .. tostring(body) .. ", " .. tostring(headers)
        end
        return nil
      end
      if code > 999 then return "code " .. code end
      if type(body) ~= "string" then return "body is " .. type(body) end
      if #body > 8191 then return "body of " .. #body .. " bytes" end
      if profile == 0 and body:find("\0", 1, true) then return "2.2 body with a NUL" end
      if type(headers) ~= "table" then return "headers are " .. type(headers) end
      for k, v in pairs(headers) do
        if type(k) ~= "string" or type(v) ~= "string" then return "header " .. tostring(k) .. " = " .. tostring(v) end
        if k ~= k:lower() then return "header name " .. k .. " not lower-case" end
      end
      return nil
    end
    """#

    nonisolated(unsafe) static let runtimes = [FuzzRuntime(profile: .v2_2, harness: harness), FuzzRuntime(profile: .v3_0, harness: harness)]
    static let separator = Array("#NEXT#".utf8)

    static func split(_ bytes: UnsafeRawBufferPointer) -> [[UInt8]] {
        var parts: [[UInt8]] = [[]]
        var i = 0
        while i < bytes.count {
            if i + separator.count <= bytes.count, bytes[i..<(i + separator.count)].elementsEqual(separator) {
                parts.append([])
                i += separator.count
            } else {
                parts[parts.count - 1].append(bytes[i])
                i += 1
            }
        }
        return parts
    }

    static func call(_ fuzz: FuzzRuntime, _ function: String, profile: Int) -> String? {
        let lua = fuzz.lua
        let top = lua.top
        defer { lua.pop(lua.top - top) }
        _ = lua.getGlobal(function)
        lua.pushNil()
        lua.push(profile)
        switch lua.pcall(arguments: 2, results: 1) {
        case .ok: return lua.string(at: -1)
        case .error(let error): fatalError("harness error: \(error.message)")
        }
    }

    static func check(_ bytes: UnsafeRawBufferPointer) {
        guard let control = bytes.first else { return }
        let profile = Int(control & 1)
        let fuzz = runtimes[profile]
        fuzzRequire(!fuzz.runtime.isFinished, "the runtime finished")
        var responses = split(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()))[...]
        var seed = Int(control >> 1)
        _ = call(fuzz, "fuzz_arm", profile: profile)
        guard let http = fuzz.runtime.modules[HTTPModule.self] else { fatalError("no http module") }
        var channels: [(EmbeddedChannel, [UInt8])] = []
        let started = http.replay(url: "http://device.test/dir/page?q=1") { host, port, configure in
            guard let response = responses.popFirst() else { return nil }
            let channel = EmbeddedChannel(loop: fuzz.loop)
            do {
                try configure(channel)
                try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: port)).wait()
            } catch {
                fatalError("pipeline set-up failed: \(error)")
            }
            channels.append((channel, response))
            return channel
        }
        fuzzRequire(started, "the URL was refused")
        // Feed each connection its response in chunks, then close it from the server side.
        var fed = 0
        while fed < channels.count {
            let (channel, response) = channels[fed]
            fed += 1
            // The request went out: a GET.
            var sent = ByteBuffer()
            while let part = try? channel.readOutbound(as: IOData.self) {
                if case .byteBuffer(let buffer) = part { sent.writeImmutableBuffer(buffer) }
            }
            fuzzRequire(sent.readString(length: 4) == "GET ", "no GET request on connection \(fed)")
            var offset = 0
            while offset < response.count, channel.isActive {
                seed = (seed &* 1103515245 &+ 12345) & 0x7fffffff
                let size = (seed >> 8) % 64 + 1
                let end = min(response.count, offset + size)
                _ = try? channel.writeInbound(ByteBuffer(bytes: response[offset..<end]))
                offset = end
                fuzz.loop.run()
            }
            if channel.isActive {
                _ = try? channel.close().wait()
            }
            fuzz.loop.run()
        }
        if let problem = call(fuzz, "fuzz_verify", profile: profile) {
            fatalError("property failed: \(problem)")
        }
    }
}

#if FUZZING
@_cdecl("HTTPResponseFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { HTTPFuzzing.check($0) }
}
#else
@main
struct CorpusReplay {
    static func main() throws { try replayCorpus(Array(CommandLine.arguments.dropFirst())) { HTTPFuzzing.check($0) } }
}
#endif
