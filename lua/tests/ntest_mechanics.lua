-- firmware: 3.0
-- What the firmware's own test framework (NTest, tests/NTest/NTest.lua in
-- nodemcu-firmware) needs from the host, checked with a small harness of our own that
-- is built the same way: one test at a time, each started by a low-priority task;
-- failures abort the test with a marker error; errors in callbacks reach
-- node.setonerror, which ends the test; coroutine tests wait for callbacks. Also the
-- Lua-core details its self-test and its "Lua detail" suite look at. See docs/NTEST.md.

local ABORT = "<<check failed>>"
local pending, current = {}, nil
local counts = { pass = 0, fail = 0, error = 0 }

local function say(kind, text)
  if kind ~= "pass" then counts[kind] = counts[kind] + 1 else counts.pass = counts.pass + 1 end
  print(("  %-5s %s"):format(kind, text))
end

-- "file.lua:line" of the caller's caller, as NTest labels an unlabelled check.
local function site(level)
  local info = debug.getinfo(level, "Sl")
  return info.short_src:match("[^/\\]*$") .. ":" .. info.currentline
end

local function check(cond, label)
  if cond then say("pass", label or site(3)) return end
  say("fail", label or site(3))
  error(ABORT)
end

local start
local function finish(err)
  if err ~= nil and not tostring(err):find(ABORT, 1, true) then
    say("error", (tostring(err):match("^[^\n]*")))
  end
  node.setonerror()
  table.remove(pending, 1)
  start()
end

start = function()
  local test = pending[1]
  if not test then
    print(("totals: %d passed, %d failed, %d errors"):format(counts.pass, counts.fail, counts.error))
    return
  end
  node.task.post(node.task.LOW_PRIORITY, function()
    print("test " .. test.name)
    current = test
    local ended = false
    local function done(err)
      if ended then return end
      ended = true
      finish(err)
    end
    node.setonerror(done)
    local ok, err = pcall(test.body, done)
    if not ok then done(err) elseif not test.async then done() end
  end)
end

local function add(name, body, async)
  pending[#pending + 1] = { name = name, body = body, async = async }
  if #pending == 1 then start() end
end

-- A test written as straight-line code: wait() suspends it until a callback made
-- by cb(label) runs, and returns that label and the callback's arguments.
local function addco(name, body)
  add(name, function(done)
    local co
    local over = false
    local function settle(ok, err)
      if over then return end
      if not ok then over = true; done(err)
      elseif coroutine.status(co) == "dead" then over = true; done() end
    end
    local function cb(label)
      return function(...)
        local ok, err = coroutine.resume(co, label, ...)
        if not ok and over then
          say("error", "late callback '" .. label .. "' of '" .. name .. "': " .. err)
        end
        settle(ok, err)
      end
    end
    co = coroutine.create(function() body(cb, coroutine.yield) end)
    settle(coroutine.resume(co))
  end, true)
end

-- Tasks -----------------------------------------------------------------------

add("tests start only after the main chunk", function()
  check(mainChunkDone == true, "main chunk finished first")
end)

add("a medium task overtakes a queued low one", function(done)
  local order = {}
  node.task.post(node.task.LOW_PRIORITY, function(p)
    order[#order + 1] = "low" .. p
    check(table.concat(order, " ") == "high2 medium1 low0", "high, medium, low; each gets its priority")
    done()
  end)
  node.task.post(node.task.MEDIUM_PRIORITY, function(p) order[#order + 1] = "medium" .. p end)
  node.task.post(node.task.HIGH_PRIORITY, function(p) order[#order + 1] = "high" .. p end)
end, true)

-- Failures and errors in callbacks ----------------------------------------------

add("a failed check in a timer callback reaches node.setonerror", function(done)
  node.setonerror(function(err)
    print("  the handler got the marker:", err:find(ABORT, 1, true) ~= nil)
    print("  first line:", (err:match("^[^\n]*")))
    print("  and a traceback:", err:find("\nstack traceback:\n", 1, true) ~= nil)
    print("  naming files without directories:", err:find("/", 1, true) == nil)
    done(err)
  end)
  tmr.create():alarm(1, tmr.ALARM_SINGLE, function() check(false, "failing on purpose") end)
end, true)

add("an error in a timer callback ends an async test", function(done)
  tmr.create():alarm(1, tmr.ALARM_SINGLE, function() error("timer callback broke") end)
end, true)

add("an error in a task ends an async test", function(done)
  node.task.post(function() local t = nil; return t.field end)
end, true)

add("an unlabelled check is labelled with file and line", function()
  check(true)
end)

add("a failed check stops the test", function()
  check(1 == 2, "one is two")
  check(true, "not reached")
end)

-- Coroutine-style tests ---------------------------------------------------------

addco("SINGLE timer resumes the coroutine once, with itself", function(cb, wait)
  local t = tmr.create()
  t:alarm(20, tmr.ALARM_SINGLE, cb("single"))
  local label, timer = wait()
  check(label == "single", "label")
  check(rawequal(timer, t), "same timer object")
  print("  state after firing:", t:state())
end)

addco("SEMI timer fires again after start()", function(cb, wait)
  local t = tmr.create()
  t:alarm(20, tmr.ALARM_SEMI, cb("semi"))
  local _, timer = wait()
  check(rawequal(timer, t), "first firing")
  timer:start()
  local label, again = wait()
  check(label == "semi" and rawequal(again, t), "second firing after start()")
end)

addco("AUTO timer keeps firing until stop()", function(cb, wait)
  local t = tmr.create()
  local started = tmr.now()
  t:alarm(20, tmr.ALARM_AUTO, cb("auto"))
  wait()
  wait()
  t:stop()
  local running = t:state()
  check(running == false, "stopped")
  check(tmr.now() - started >= 40000, "two intervals have passed")
end)

addco("a callback that outlives its test", function(cb)
  local stray = cb("stray")
  node.task.post(node.task.MEDIUM_PRIORITY, function()
    node.task.post(node.task.MEDIUM_PRIORITY, stray)
  end)
end)

add("the late callback was reported before this test began", function()
  check(counts.error == 3, "three errors so far")
end)

-- Lua core ------------------------------------------------------------------------

add("argument errors name the function and the type", function()
  local ok, err = pcall(function() math.abs("") end)
  check(not ok and err:find("number expected, got string", 1, true), err)
  ok, err = pcall(function() math.abs() end)
  check(not ok and err:find("number expected, got no value", 1, true), err)
end)

add("string.dump tells functions apart", function()
  local a, b = function(x) return x end, function(x) return x end
  check(string.dump(a) == string.dump(b), "same code on one line: equal dumps")
  check(string.dump(function(x) return x * 2 end) ~= string.dump(function(x) return x + 2 end),
    "different code: different dumps")
end)

add("5.1 helpers", function()
  local packed = { n = select("#", 1, nil, 3), 1, nil, 3 }
  local x, y, z = unpack(packed, 1, packed.n)
  check(packed.n == 3 and x == 1 and y == nil and z == 3, "unpack with an explicit end keeps nils")
end)

add("resuming a finished coroutine fails with a message", function()
  local co = coroutine.create(function() end)
  coroutine.resume(co)
  local ok, err = coroutine.resume(co)
  check(ok == false and err == "cannot resume dead coroutine", tostring(err))
end)

add("the soft watchdog takes positive, zero and negative values", function()
  tmr.softwd(22)
  tmr.softwd(0)
  tmr.softwd(-1)
  tmr.softwd(-22)
  check(true, "no error")
end)

mainChunkDone = true
print("main chunk done")
