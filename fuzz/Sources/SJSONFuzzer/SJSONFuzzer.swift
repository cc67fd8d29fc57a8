import FuzzSupport
import NodeMCU

/// sjson properties checked on every input (Lua harness below, both firmware profiles):
/// 1. `sjson.decode` and `sjson.decoder():write` never crash, only raise Lua errors;
/// 2. the input decoded with `sjson.decode`, with one `decoder:write` and with
///    `decoder:write` in chunks gives the same value (deep, with integer/float subtypes)
///    or the same error (an incomplete document counts as one outcome);
/// 3. a decoded table re-encodes with `sjson.encode` (and with `sjson.encoder():read`
///    in small pieces, giving the same text) without crashing;
/// 4. nesting limits hold: a decoded value is at most 20 levels deep, and a document
///    deeper than that fails with `LEVELS_EXCEEDED`.
/// Byte 0: bit 0 the profile (2.2 / 3.0), bits 1–2 the options (none, {}, {null = "N"},
/// {metatable = {}}); byte 1 seeds the chunk sizes (1…16); the rest is the document.
enum SJSONFuzzing {
    static let harness = #"""
    local function deq(a, b)
      if a == b then return math.type(a) == math.type(b) end
      if a ~= a and b ~= b then return true end
      if type(a) ~= "table" or type(b) ~= "table" then return false end
      for k, v in next, a do if not deq(v, rawget(b, k)) then return false end end
      for k in next, b do if rawget(a, k) == nil then return false end end
      return true
    end
    local function depth(v, seen)
      if type(v) ~= "table" then return 1 end
      local d = 0
      for _, x in next, v do local e = depth(x); if e > d then d = e end end
      return d + 1
    end
    local function show(ok, v) return tostring(ok) .. " " .. tostring(v) end
    local function options(k)
      if k == 0 then return nil elseif k == 1 then return {} elseif k == 2 then return { null = "N" }
      else return { metatable = {} } end
    end
    -- An outcome: true, value | false, message ("incomplete" for an unfinished document).
    local function streamed(s, opts, sizes)
      local d = sjson.decoder(opts)
      local i, n = 1, 0
      while i <= #s do
        n = n + 1
        local size = sizes and sizes(n) or #s
        local ok, err = pcall(d.write, d, s:sub(i, i + size - 1))
        if not ok then return false, err end
        i = i + size
      end
      local ok, v = pcall(d.result, d)
      if not ok then
        if v ~= "decode not complete" then return false, "result: " .. tostring(v) end
        return false, "incomplete"
      end
      return true, v
    end
    function fuzz_sjson(s, control)
      local opts = options((control >> 1) & 3)
      local seed = (control >> 8) & 0xFF
      local ok1, v1 = pcall(sjson.decode, s, opts)
      if not ok1 and v1 == "Incomplete JSON object passed to sjson.decode" then v1 = "incomplete" end
      if not ok1 and type(v1) ~= "string" then return "decode raised a non-string " .. type(v1) end
      local ok2, v2 = streamed(s, opts, nil)
      local ok3, v3 = streamed(s, opts, function(n) return ((seed * 31 + n * 17) % 16) + 1 end)
      if ok1 ~= ok2 or (ok1 and not deq(v1, v2)) or (not ok1 and v1 ~= v2) then
        return "decode vs one write: " .. show(ok1, v1) .. " / " .. show(ok2, v2)
      end
      if ok2 ~= ok3 or (ok2 and not deq(v2, v3)) or (not ok2 and v2 ~= v3) then
        return "one write vs chunks: " .. show(ok2, v2) .. " / " .. show(ok3, v3)
      end
      if not ok1 then
        if v1:find("LEVELS_EXCEEDED", 1, true) == nil and s:match("^%s*" .. string.rep("%[", 21)) then
          return "21 nested arrays failed with " .. v1
        end
        return nil
      end
      if depth(v1) > 20 then return "decoded a value " .. depth(v1) .. " levels deep" end
      if type(v1) == "table" then
        local okE, text = pcall(sjson.encode, v1)
        if not okE and type(text) ~= "string" then return "encode raised a non-string" end
        local okR, pieces = pcall(function()
          local e, out = sjson.encoder(v1), {}
          for _ = 1, 100000 do
            local piece = e:read(seed % 7 + 1)
            if piece == nil then return table.concat(out) end
            out[#out + 1] = piece
          end
          error("encoder:read never ended")
        end)
        if okE ~= okR or (okE and text ~= pieces) then
          return "encode vs encoder:read: " .. show(okE, text) .. " / " .. show(okR, pieces)
        end
      end
      return nil
    end
    """#

    nonisolated(unsafe) static let runtimes = [FuzzRuntime(profile: .v2_2, harness: harness), FuzzRuntime(profile: .v3_0, harness: harness)]

    static func check(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 2 else { return }
        let control = Int(bytes[0]) | Int(bytes[1]) << 8
        runtimes[Int(bytes[0] & 1)].check("fuzz_sjson", UnsafeRawBufferPointer(rebasing: bytes.dropFirst(2)), control: control)
    }
}

#if FUZZING
@_cdecl("SJSONFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { SJSONFuzzing.check($0) }
}
#else
@main
struct CorpusReplay {
    static func main() throws { try replayCorpus(Array(CommandLine.arguments.dropFirst())) { SJSONFuzzing.check($0) } }
}
#endif
