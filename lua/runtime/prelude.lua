-- The Lua 5.1-era globals NodeMCU scripts rely on and Lua 5.3 lacks
-- (behaviour spec §6.2), and the device's print. Run once per boot, before
-- the script; `host` carries the primitives the host provides.
local host = ...
local write = host.write
local select, tostring, type, error, pairs, next = select, tostring, type, error, pairs, next
local concat = table.concat
local getinfo, getupvalue, upvaluejoin = debug.getinfo, debug.getupvalue, debug.upvaluejoin

-- print: tostring of each argument, tab-separated, one write per call; while 2.2's
-- node.output has a function (host.pieces), one write per piece, as the firmware's
-- print calls it: print("a", 1) writes "a", "\t", "1", "\n".
function print(...)
  local n = select("#", ...)
  local parts = { ... }
  for i = 1, n do parts[i] = tostring(parts[i]) end
  if host.pieces then
    for i = 1, n do
      if i > 1 then write("\t") end
      write(parts[i])
    end
    write("\n")
  else
    write(concat(parts, "\t", 1, n) .. "\n")
  end
end

local function typeerror(fname, expected, n, value)
  local got = n == 0 and "no value" or type(value)
  error(("bad argument #1 to '%s' (%s expected, got %s)"):format(fname, expected, got), 3)
end

unpack = table.unpack
loadstring = load

function table.getn(...)
  local t = ...
  if type(t) ~= "table" then typeerror("getn", "table", select("#", ...), t) end
  return #t
end

function table.setn()
  error("'setn' is obsolete", 2)
end

function table.maxn(...)
  local t = ...
  if type(t) ~= "table" then typeerror("maxn", "table", select("#", ...), t) end
  local max = 0
  for k in pairs(t) do
    if type(k) == "number" and k > max then max = k end
  end
  return max
end

function table.foreach(t, f)
  for k, v in pairs(t) do
    local r = f(k, v)
    if r ~= nil then return r end
  end
end

function table.foreachi(t, f)
  for i = 1, #t do
    local r = f(i, t[i])
    if r ~= nil then return r end
  end
end

function math.pow(x, y) return x ^ y end
string.gfind = string.gmatch

function gcinfo() return math.floor(collectgarbage("count")) end

-- getfenv/setfenv/module: best effort through the function's _ENV upvalue,
-- enough for the `setfenv(1, M)` module pattern (not exact 5.1 semantics).
local function envindex(f)
  local i = 1
  while true do
    local name = getupvalue(f, i)
    if name == nil then return nil end
    if name == "_ENV" then return i end
    i = i + 1
  end
end

local function functionat(f, fname)
  if type(f) == "number" then
    if f < 0 then error(("bad argument #1 to '%s' (level must be non-negative)"):format(fname), 3) end
    local info = getinfo(f + 2, "f")
    if info == nil then error(("bad argument #1 to '%s' (invalid level)"):format(fname), 3) end
    return info.func
  end
  if type(f) ~= "function" then
    error(("bad argument #1 to '%s' (number expected, got %s)"):format(fname, type(f)), 3)
  end
  return f
end

function getfenv(f)
  if f == 0 then return _G end
  f = functionat(f or 1, "getfenv")
  local i = envindex(f)
  if i == nil then return _G end
  local _, env = getupvalue(f, i)
  return env
end

function setfenv(f, t)
  if type(t) ~= "table" then
    error(("bad argument #2 to 'setfenv' (table expected, got %s)"):format(type(t)), 2)
  end
  f = functionat(f, "setfenv")
  local i = envindex(f)
  if i ~= nil then
    local env = t
    upvaluejoin(f, i, function() return env end, 1)
  end
  return f
end

function package.seeall(m)
  setmetatable(m, { __index = _G })
end

function module(name, ...)
  local m = package.loaded[name]
  if type(m) ~= "table" then
    m = _G
    for part in name:gmatch("[^.]+") do
      local child = m[part]
      if type(child) ~= "table" then
        child = {}
        m[part] = child
      end
      m = child
    end
    package.loaded[name] = m
  end
  if m._NAME == nil then
    m._M = m
    m._NAME = name
    m._PACKAGE = name:gsub("[^.]*$", "")
  end
  for i = 1, select("#", ...) do
    select(i, ...)(m)
  end
  -- level 2: the function that called module()
  local info = getinfo(2, "f")
  local idx = info and envindex(info.func)
  if idx ~= nil then
    upvaluejoin(info.func, idx, function() return m end, 1)
  end
end
