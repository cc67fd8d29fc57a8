import Foundation
import FuzzSupport
import NodeMCU

/// Lua bridge properties checked on every input: random Lua values passed to every
/// function of every module table the runtime installs (and their sub-tables such as
/// `wifi.sta`, `node.task`, `net.dns`), each call through a protected call:
/// 1. no crash and no Swift trap (either kills the fuzzer);
/// 2. a call that fails raises a Lua error whose value is a string (the firmware's text),
///    never a non-string, and never mentions Swift internals;
/// 3. the runtime keeps running (no reboot, exit or halt).
/// Not called (they would reboot, halt or block the process, run the input as Lua, or open
/// real sockets): see `excluded` below and fuzz/README.md.
/// Byte 0: bit 0 the profile. Then, repeatedly: a byte picks a function (index into the
/// sorted list of `module.name` paths), a byte the argument count (0…7), then the
/// arguments, each from a kind byte and its payload.
enum BridgeFuzzing {
    static let harness = #"""
    local excluded = {
      ["node.restart"] = true, ["node.dsleep"] = true, ["node.flashreload"] = true,
      ["node.LFS.reload"] = true, ["node.input"] = true, ["node.setpartitiontable"] = true,
      ["rtctime.dsleep"] = true, ["rtctime.dsleep_aligned"] = true,
      ["tmr.delay"] = true, ["gpio.serout"] = true,
      ["http.get"] = true, ["http.post"] = true, ["http.put"] = true, ["http.delete"] = true,
      ["http.request"] = true, ["net.dns.resolve"] = true, ["sntp.sync"] = true,
    }
    local modules = { "tmr", "node", "mqtt", "bit", "sjson", "file", "pipe", "uart", "crypto",
      "encoder", "struct", "net", "tls", "http", "gpio", "adc", "dht", "pwm", "wifi",
      "enduser_setup", "rtctime", "sntp", "cron", "i2c", "spi", "ow" }
    local functions, names = {}, {}
    local function collect(path, t, level)
      for k, v in pairs(t) do
        if type(k) == "string" then
          local name = path .. "." .. k
          if type(v) == "function" and not excluded[name] then
            names[#names + 1] = name
            functions[name] = v
          elseif type(v) == "table" and level < 2 then
            collect(name, v, level + 1)
          end
        end
      end
    end
    for _, m in ipairs(modules) do
      if type(_G[m]) == "table" then collect(m, _G[m], 1) end
    end
    table.sort(names)
    if os.getenv("FUZZ_SHOW") then
      io.stderr:write(#names .. " functions: " .. table.concat(names, " ") .. "\n")
    end
    fuzz_function_names = names

    -- Objects of every module, made once (only constructors; nothing connects).
    local objects = {}
    local function make(f, ...)
      local ok, v = pcall(f, ...)
      if ok and v ~= nil then objects[#objects + 1] = v end
    end
    make(function() return tmr.create() end)
    make(function() return sjson.decoder() end)
    make(function() return sjson.encoder({ 1, 2 }) end)
    make(function() return mqtt.Client("fuzz", 60) end)
    make(function() return net.createConnection(net.TCP, 0) end)
    make(function() return net.createServer(net.TCP, 30) end)
    make(function() return net.createUDPSocket() end)
    make(function() return tls.createConnection() end)
    make(function() return pipe.create() end)
    make(function() return crypto.new_hash("SHA1") end)
    make(function() return crypto.new_hmac("MD5", "key") end)
    make(function() return file.open("fuzz-object.txt", "w+") end)
    objects[#objects + 1] = coroutine.create(function() end)
    if sjson.NULL then objects[#objects + 1] = sjson.NULL end

    local words = { "", "data", "connection", "reconnection", "disconnection", "receive", "sent",
      "message", "offline", "connect", "http://127.0.0.1:1/", "sha256", "MD5", "AES-ECB", "AES-CBC",
      "r", "w", "a+", "init.lua", "*a", "i4", "<!4 h", "s", "c0", "%d", "/", "..", "1.2.3.4",
      "255.255.255.255", "00:11:22:33:44:55", "Z", "\0", "TCP", "high", "low", "both", "up", "down",
      "* * * * *", "ALL", "0", "-1", "1e308", "nan" }

    local input, pos = "", 1
    local function byte()
      local b = input:byte(pos) or 0
      pos = pos + 1
      return b
    end
    local function bytes(n)
      local s = input:sub(pos, pos + n - 1)
      pos = pos + n
      return s .. string.rep("\0", n - #s)
    end
    local cycle = {}
    cycle.self = cycle
    cycle[1] = cycle
    local big = string.rep("x", 70000)
    local value
    value = function(depth)
      local k = byte() % 26
      if k == 0 then return nil
      elseif k == 1 then return true
      elseif k == 2 then return false
      elseif k == 3 then return byte()
      elseif k == 4 then return byte() - 128
      elseif k == 5 then return math.maxinteger
      elseif k == 6 then return math.mininteger
      elseif k == 7 then return ({ 0x7fffffff, -0x80000000, 0xffffffff, 0x100000000, 65535, 65536, 1000000 })[byte() % 7 + 1]
      elseif k == 8 then return 0 / 0
      elseif k == 9 then return 1 / 0
      elseif k == 10 then return -1 / 0
      elseif k == 11 then return -0.0
      elseif k == 12 then return (string.unpack("<d", bytes(8)))
      elseif k == 13 then return (string.unpack("<i8", bytes(8)))
      elseif k == 14 then return byte() / 7
      elseif k == 15 then return bytes(byte() % 48)
      elseif k == 16 then return words[byte() % #words + 1]
      elseif k == 17 then return big
      elseif k == 18 then return string.rep(string.char(byte()), byte() * 64)
      elseif k == 19 then
        local t = {}
        if depth < 3 then for i = 1, byte() % 6 do t[i] = value(depth + 1) end end
        return t
      elseif k == 20 then
        local t = {}
        if depth < 3 then for _ = 1, byte() % 4 do t[words[byte() % #words + 1]] = value(depth + 1) end end
        return t
      elseif k == 21 then return cycle
      elseif k == 22 then return function() end
      elseif k == 23 then return function() error("fuzz callback error") end
      elseif k == 24 then return objects[byte() % #objects + 1]
      else return setmetatable({}, { __index = function() error("fuzz __index error") end,
        __tostring = function() error("fuzz __tostring error") end,
        __len = function() return -1 end }) end
    end

    -- Whether `word` is in one of the arguments (or a string inside a table argument).
    local function quoted(args, n, word)
      local seen = {}
      local function has(v)
        if type(v) == "string" then return v:find(word, 1, true) ~= nil end
        if type(v) ~= "table" or seen[v] then return false end
        seen[v] = true
        for k, x in next, v do
          if has(k) or has(x) then return true end
        end
        return false
      end
      for i = 1, n do
        if has(args[i]) then return true end
      end
      return false
    end

    function fuzz_bridge(s, control)
      input, pos = s, 1
      while pos <= #input do
        local name = names[(byte() << 8 | byte()) % #names + 1]
        local n = byte() % 8
        local args = {}
        for i = 1, n do args[i] = value(0) end
        local ok, err = pcall(functions[name], table.unpack(args, 1, n))
        if not ok then
          if type(err) ~= "string" then return name .. " raised a " .. type(err) end
          -- Swift internals in the message, unless an argument brought the word (error texts
          -- quote arguments: "invalid option 'Fatal…'").
          for _, word in ipairs({ "Swift", "Fatal" }) do
            if err:find(word, 1, true) and not quoted(args, n, word) then return name .. " raised " .. err end
          end
        end
      end
      return nil
    end
    """#

    /// The flash folder is the working directory: a scratch one, so `file.*` cannot touch
    /// the checkout.
    nonisolated(unsafe) static let runtimes: [FuzzRuntime] = {
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("nodemcu-bridge-fuzz-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        precondition(FileManager.default.changeCurrentDirectoryPath(scratch))
        return [FuzzRuntime(profile: .v2_2, harness: harness), FuzzRuntime(profile: .v3_0, harness: harness)]
    }()

    static func check(_ bytes: UnsafeRawBufferPointer) {
        guard let control = bytes.first else { return }
        let fuzz = runtimes[Int(control & 1)]
        fuzz.check("fuzz_bridge", UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), control: Int(control))
        precondition(!fuzz.runtime.isFinished && !fuzz.runtime.halted, "the runtime stopped")
    }
}

#if FUZZING
@_cdecl("LuaBridgeFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { BridgeFuzzing.check($0) }
}
#else
@main
struct CorpusReplay {
    static func main() throws {
        // Absolute paths: the fuzzer's working directory becomes a scratch folder.
        let paths = CommandLine.arguments.dropFirst().map { URL(fileURLWithPath: $0).path }
        try replayCorpus(Array(paths)) { BridgeFuzzing.check($0) }
    }
}
#endif
