/// The scenario API, in Lua, on the primitives of `ScenarioRunner` (the chunk's argument
/// `host`); the chunk returns the event dispatcher the runner calls:
/// `dispatch("timer", id)`, `dispatch("gpio", pin, level)`,
/// `dispatch("publish", topic, payload)`, `dispatch("console", line)`.
///
/// Expectations (`expect_publish`, `expect_gpio`, `expect_console`) are met by an event
/// seen after the start of the scenario code that asks (the top level, or the callback
/// that runs it), within the time given; else the run fails with the device time and the
/// expectation. Device events (gpio writes, console lines) arrive one loop tick after
/// the device's call, so what a callback causes arrives after it has returned.
enum ScenarioPrelude {
    static let code: [UInt8] = Array(#"""
local host = ...
local handlers = { gpio = {}, publish = {}, console = {} }
local timers = {}
local waits = {}
local events = {}       -- every event: { seq, kind, a, b, t }
local seq, mark = 0, 0
local consoleLines, published = {}, {}

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "function" then return "<function>" end
  return tostring(v)
end

local function call(fn, ...)
  local saved = mark
  mark = seq
  fn(...)
  mark = saved
end

local function check(cond, level, text)
  if not cond then error(text, level + 1) end
end

function fail(message)
  host.finish(1, "scenario failed at " .. host.time_text() .. ": " .. tostring(message))
  error("scenario failed", 0)
end

function done(message)
  if message then host.log(message) end
  host.finish(0)
end

function log(...)
  local parts = {}
  for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
  host.log(table.concat(parts, " "))
end

function now() return host.now() end

function at(ms, fn)
  check(type(ms) == "number", 2, "at(ms, fn): ms must be a number")
  check(type(fn) == "function", 2, "at(ms, fn): fn must be a function")
  local id = host.timer(ms - host.now())
  timers[id] = fn
  return id
end

function after(ms, fn)
  check(type(ms) == "number" and type(fn) == "function", 2, "after(ms, fn): a number and a function")
  return at(host.now() + ms, fn)
end

function cancel(id)
  timers[id] = nil
  host.cancel(id)
end

local function topicMatches(filter, topic)
  if filter == topic then return true end
  local f, t = {}, {}
  for part in (filter .. "/"):gmatch("([^/]*)/") do f[#f + 1] = part end
  for part in (topic .. "/"):gmatch("([^/]*)/") do t[#t + 1] = part end
  for i = 1, #f do
    if f[i] == "#" then return true end
    if t[i] == nil then return false end
    if f[i] ~= "+" and f[i] ~= t[i] then return false end
  end
  return #t == #f
end

local function payloadMatches(expected, payload)
  if expected == nil then return true end
  if type(expected) == "function" then return expected(payload) and true or false end
  expected = tostring(expected)
  if expected == payload then return true end
  local ok, found = pcall(string.find, payload, "^" .. expected .. "$")
  return ok and found ~= nil
end

local function lineMatches(pattern, line)
  if type(pattern) == "function" then return pattern(line) and true or false end
  local ok, found = pcall(string.find, line, pattern)
  return ok and found ~= nil
end

-- Handlers

function on_gpio(pin, fn)
  check(type(pin) == "number" and type(fn) == "function", 2, "on_gpio(pin, fn): a pin number and a function")
  table.insert(handlers.gpio, { pin = pin, fn = fn })
end

function on_publish(pattern, fn)
  check(type(pattern) == "string" and type(fn) == "function", 2, "on_publish(topic_pattern, fn): a topic filter and a function")
  host.need_broker("on_publish")
  table.insert(handlers.publish, { pattern = pattern, fn = fn })
end

function on_console(pattern, fn)
  check(type(fn) == "function", 2, "on_console(pattern, fn): fn must be a function")
  table.insert(handlers.console, { pattern = pattern, fn = fn })
end

-- Board inputs

gpio = host.gpio
adc = host.adc
dht = host.dht
uart = host.uart
wifi_drop = host.wifi_drop
wifi_restore = host.wifi_restore

-- Faults

function drop(target) return host.fault("drop", target) end
function half_open(target) return host.fault("half_open", target) end
function delay(target, ms) return host.fault("delay", target, ms) end
function fragment(target, on) return host.fault("fragment", target, on) end
function cut_after(target, n) return host.fault("cut_after", target, n) end
function refuse(target) return host.fault("refuse", target) end
function allow(target) return host.fault("allow", target) end
function dns_fail(name) return host.fault("dns_fail", name) end
function dns_ok(name) return host.fault("dns_ok", name) end
function clear_faults() return host.fault("clear", "*") end

-- MQTT

function broker(address, options)
  check(type(address) == "string", 2, "broker(\"host[:port]\"[, options]): the address must be a string")
  check(options == nil or type(options) == "table", 2, "broker: options must be a table")
  options = options or {}
  host.broker(address, options.tls and true or false, options.user, options.password, options.client_id)
end

function publish(topic, payload, qos, retain)
  host.need_broker("publish")
  host.publish(topic, payload, qos or 0, retain or false)
end

-- Observation

function gpio_writes() return host.gpio_writes() end
function connections() return host.connections() end

function console_lines()
  local copy = {}
  for i, line in ipairs(consoleLines) do copy[i] = line end
  return copy
end

function publishes()
  local copy = {}
  for i, p in ipairs(published) do copy[i] = { topic = p.topic, payload = p.payload, t = p.t } end
  return copy
end

-- Expectations

function expect(cond, message)
  if not cond then fail("expect failed: " .. tostring(message or "(no message)")) end
  return cond
end

local function waitFor(match, within, description, lastSeen, andThen)
  for i = #events, 1, -1 do
    local ev = events[i]
    if ev.seq <= mark then break end
    if match(ev) then
      if andThen then call(andThen, ev.a, ev.b) end
      return true
    end
  end
  local since = host.now()
  local w = { match = match, andThen = andThen, description = description }
  w.timer = at(since + within, function()
    if w.done then return end
    w.done = true
    local seen = lastSeen and lastSeen() or nil
    fail(description .. " not met (waited from " .. host.time_text(since) .. ")" ..
      (seen and ("; last seen: " .. seen) or ""))
  end)
  waits[#waits + 1] = w
  return false
end

local function checkWithin(within, name)
  check(type(within) == "number" and within >= 0, 3, name .. ": within_ms must be a number of milliseconds")
end

function expect_publish(topic, payload, within, andThen)
  check(type(topic) == "string", 2, "expect_publish(topic, payload_or_pattern, within_ms): topic must be a string")
  checkWithin(within, "expect_publish")
  host.need_broker("expect_publish")
  local description = string.format("expect_publish(%s, %s, within %d ms)", show(topic), show(payload), within)
  return waitFor(function(ev)
    return ev.kind == "publish" and topicMatches(topic, ev.a) and payloadMatches(payload, ev.b)
  end, within, description, function()
    for i = #published, 1, -1 do
      local p = published[i]
      if topicMatches(topic, p.topic) then return string.format("%s %s at %s", p.topic, show(p.payload), host.time_text(p.t)) end
    end
    return "nothing on " .. topic
  end, andThen)
end

function expect_gpio(pin, level, within, andThen)
  check(type(pin) == "number", 2, "expect_gpio(pin, level, within_ms): pin must be a number")
  checkWithin(within, "expect_gpio")
  local description = string.format("expect_gpio(%d, %s, within %d ms)", pin, show(level), within)
  return waitFor(function(ev)
    return ev.kind == "gpio" and ev.a == pin and ev.b == level
  end, within, description, function()
    for i = #events, 1, -1 do
      local ev = events[i]
      if ev.kind == "gpio" and ev.a == pin then return string.format("gpio %d = %d at %s", pin, ev.b, host.time_text(ev.t)) end
    end
    return "no write to gpio " .. pin
  end, andThen)
end

function expect_console(pattern, within, andThen)
  checkWithin(within, "expect_console")
  local description = string.format("expect_console(%s, within %d ms)", show(pattern), within)
  return waitFor(function(ev)
    return ev.kind == "console" and lineMatches(pattern, ev.a)
  end, within, description, function()
    local last = consoleLines[#consoleLines]
    return last and show(last) or "no console output"
  end, andThen)
end

-- The dispatcher

return function(kind, a, b)
  if kind == "run_end" then
    for _, w in ipairs(waits) do
      if not w.done then fail(w.description .. " still pending when the run ended (--run-for)") end
    end
    return
  end
  if kind == "timer" then
    local fn = timers[a]
    timers[a] = nil
    if fn then call(fn) end
    return
  end
  seq = seq + 1
  local ev = { seq = seq, kind = kind, a = a, b = b, t = host.now() }
  events[#events + 1] = ev
  if #events > 20000 then table.remove(events, 1) end
  if kind == "console" then consoleLines[#consoleLines + 1] = a
  elseif kind == "publish" then published[#published + 1] = { topic = a, payload = b, t = ev.t } end
  local pending = {}
  for _, w in ipairs(waits) do
    if not w.done and w.match(ev) then
      w.done = true
      cancel(w.timer)
      if w.andThen then pending[#pending + 1] = w.andThen end
    end
  end
  local kept = {}
  for _, w in ipairs(waits) do if not w.done then kept[#kept + 1] = w end end
  waits = kept
  if kind == "gpio" then
    for _, h in ipairs(handlers.gpio) do if h.pin == a then call(h.fn, b) end end
  elseif kind == "publish" then
    for _, h in ipairs(handlers.publish) do if topicMatches(h.pattern, a) then call(h.fn, a, b) end end
  elseif kind == "console" then
    for _, h in ipairs(handlers.console) do
      if h.pattern == nil or lineMatches(h.pattern, a) then call(h.fn, a) end
    end
  end
  -- Continuations of met expectations run after the handlers have seen the event.
  for _, fn in ipairs(pending) do call(fn, a, b) end
end
"""#.utf8)
}
