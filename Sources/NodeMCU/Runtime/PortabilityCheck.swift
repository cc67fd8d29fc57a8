import LuaBridge

#if canImport(Glibc)
import Glibc
#endif

/// `--strict`: reports what runs on the host but not on the device, one line each
/// (`file:line: text`), and makes the run fail (exit status 1) if there is any.
///
/// - Lua 5.1 syntax (the device runs Lua 5.1): every file the script loads (the main
///   script, `dofile`, `loadfile`, `require`) is parsed by Debian's `luac5.1 -p` in a
///   separate process, so `//`, bitwise operators, `goto` and labels are caught.
/// - At run time (proxies on the globals, reported at the first use from each line):
///   `io`, `os` beyond `os.exit`, `utf8`, Lua 5.3-only functions (`math.type`,
///   `math.tointeger`, `math.ult`, `math.maxinteger`, `math.mininteger`,
///   `string.pack`/`unpack`/`packsize`, `table.move`), modules the profile's default
///   firmware build does not include (`defaultBuildModules`), and integral floats
///   passed to `print`/`tostring`, which print as `5.0` here and `5` on the device.
public enum PortabilityCheck {
    /// The modules of the default `app/include/user_modules.h` of the firmware tags
    /// (2.2.1 and 3.0.0): anything else needs a custom build.
    public static let defaultBuildModules: Set<String> = [
        "adc", "bit", "dht", "file", "gpio", "i2c", "mqtt", "net", "node", "ow", "spi", "tmr", "uart", "wifi",
    ]

    /// Installs the run-time checks into the runtime's current Lua state (before the
    /// heap budget starts counting).
    static func install(in runtime: Runtime) {
        let lua = runtime.lua
        if let message = lua.load(Array(checks.utf8), chunkName: "=strict") {
            fatalError("nodemcu-host: the --strict checks do not load: \(message)")
        }
        lua.push(function: { [unowned runtime] lua throws(LuaError) in
            if let line = lua.string(at: 1) { runtime.reportPortability(line) }
            return 0
        })
        lua.push(function: { [unowned runtime] lua throws(LuaError) in
            if let path = lua.string(at: 1) { runtime.checkSyntax(ofFile: path) }
            return 0
        })
        lua.newTable()
        let hostModules = ModuleRegistry.modules.map { $0.name }
        for (index, name) in hostModules.filter({ !defaultBuildModules.contains($0) }).enumerated() {
            lua.push(name)
            lua.rawSet(index + 1, in: -2)
        }
        lua.push(runtime.profile.rawValue)
        if case .error(let error) = lua.pcall(arguments: 4, results: 0) {
            fatalError("nodemcu-host: the --strict checks failed: \(error.traceback)")
        }
    }

    /// Runs `luac5.1 -p` on `path`; returns its complaint lines (`file:line: message`),
    /// or nil when `luac5.1` cannot be run.
    public static func lua51SyntaxErrors(path: String) -> [String]? {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return nil }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("luac5.1"), strdup("-p"), strdup("--"), strdup(path), nil]
        defer { for arg in argv { free(arg) } }
        let status = posix_spawnp(&pid, "luac5.1", &actions, nil, argv, environ)
        close(fds[1])
        defer { close(fds[0]) }
        guard status == 0 else { return nil }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output.append(contentsOf: buffer[0..<n])
        }
        var exitStatus: Int32 = 0
        while waitpid(pid, &exitStatus, 0) < 0 && errno == EINTR {}
        if exitStatus == 127 << 8 { return nil }
        return String(decoding: output, as: UTF8.self).split(separator: "\n").map { line in
            var text = Substring(line)
            if text.hasPrefix("luac5.1: ") { text = text.dropFirst("luac5.1: ".count) }
            return String(text)
        }
    }

    /// The run-time checks; called with (report, checkfile, nondefault modules, profile).
    static let checks = #"""
    local report, checkfile, nondefault, profile = ...
    local getinfo, type, rawget, setmetatable, tostring = debug.getinfo, type, rawget, setmetatable, tostring
    local floor, mtype, pairs = math.floor, math.type, pairs
    local seen = {}
    local function where()
      for level = 3, 30 do
        local info = getinfo(level, "Sl")
        if not info then break end
        if info.what ~= "C" and info.short_src ~= "strict" and info.short_src ~= "prelude" then
          return info.short_src .. ":" .. (info.currentline or 0)
        end
      end
      return "?"
    end
    local function warn(text)
      local line = where() .. ": " .. text
      if not seen[line] then seen[line] = true; report(line) end
    end
    local function guard(name, real, flagged)
      local proxy = {}
      setmetatable(proxy, {
        __index = function(_, k)
          local why = flagged(k)
          if why then warn(why) end
          return real[k]
        end,
        __newindex = real,
        __pairs = function() return pairs(real) end,
      })
      _G[name] = proxy
      if package.loaded[name] == real then package.loaded[name] = proxy end
    end
    if io then guard("io", io, function(k) return "io." .. tostring(k) .. " is not available on the device (no io library)" end) end
    if os then guard("os", os, function(k)
      if k ~= "exit" then return "os." .. tostring(k) .. " is not available on the device (no os library)" end
    end) end
    if utf8 then guard("utf8", utf8, function(k) return "utf8." .. tostring(k) .. " is Lua 5.3 only (the device runs Lua 5.1)" end) end
    local only53 = {
      math = {type = true, tointeger = true, ult = true, maxinteger = true, mininteger = true},
      string = {pack = true, unpack = true, packsize = true},
      table = {move = true},
    }
    for lib, names in pairs(only53) do
      local real = _G[lib]
      guard(lib, real, function(k)
        if names[k] then return lib .. "." .. tostring(k) .. " is Lua 5.3 only (the device runs Lua 5.1)" end
      end)
    end
    for _, name in ipairs(nondefault) do
      local real = rawget(_G, name)
      if real then
        guard(name, real, function()
          return "module '" .. name .. "' is not in the default " .. profile .. " firmware build (needs a custom build)"
        end)
      end
    end
    local function integralfloat(v)
      return mtype(v) == "float" and v == floor(v) and v == v and v ~= 1/0 and v ~= -1/0
    end
    local realtostring, realprint = tostring, print
    tostring = function(v)
      if integralfloat(v) then
        warn("the float " .. realtostring(v) .. " prints as " .. realtostring(v) .. " here and " .. ("%d"):format(v) .. " on the device (Lua 5.1 numbers)")
      end
      return realtostring(v)
    end
    print = function(...)
      for i = 1, select("#", ...) do
        local v = select(i, ...)
        if integralfloat(v) then
          warn("the float " .. realtostring(v) .. " prints as " .. realtostring(v) .. " here and " .. ("%d"):format(v) .. " on the device (Lua 5.1 numbers)")
        end
      end
      return realprint(...)
    end
    local realdofile, realloadfile, realrequire = dofile, loadfile, require
    dofile = function(name, ...)
      if type(name) == "string" then checkfile(name) end
      return realdofile(name, ...)
    end
    loadfile = function(name, ...)
      if type(name) == "string" then checkfile(name) end
      return realloadfile(name, ...)
    end
    require = function(name, ...)
      if type(name) == "string" and not package.loaded[name] and package.searchpath then
        local path = package.searchpath(name, package.path)
        if path and path:sub(-4) == ".lua" then checkfile(path) end
      end
      return realrequire(name, ...)
    end
    """#
}

extension Runtime {
    /// Records a `--strict` finding (once per line of text) and prints it on stderr.
    public func reportPortability(_ line: String) {
        guard !portabilityFindings.contains(line) else { return }
        portabilityFindings.append(line)
        Console.err("nodemcu-host: strict: " + line + "\n")
        emit(.portability(line))
    }

    /// Checks `path` with the Lua 5.1 parser (once per file per run).
    public func checkSyntax(ofFile path: String) {
        let marker = "\u{0}checked " + path
        guard !portabilityFindings.contains(marker) else { return }
        portabilityFindings.append(marker)
        guard let complaints = PortabilityCheck.lua51SyntaxErrors(path: path) else {
            Console.diagnostic("--strict: cannot run luac5.1 (Debian package lua5.1): the Lua 5.1 syntax check of \(path) is skipped")
            return
        }
        for line in complaints where !line.isEmpty {
            reportPortability(line + " (Lua 5.1 syntax: the device cannot load this file)")
        }
    }

    /// The `--strict` findings (without the bookkeeping of checked files).
    public var portabilityProblems: [String] { portabilityFindings.filter { !$0.hasPrefix("\u{0}") } }
}
