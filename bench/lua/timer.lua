-- bench/lua/timer.lua INTERVAL_MS COUNT
-- A tmr.ALARM_AUTO timer of INTERVAL_MS; records tmr.now() at each of COUNT
-- fires, then prints "SAMPLES us us ..." (fire times relative to the first).
local interval, count = tonumber(arg[1]), tonumber(arg[2])
local WRAP = 2147483648
local times, k, first = {}, 0, nil

tmr.create():alarm(interval, tmr.ALARM_AUTO, function(t)
  local now = tmr.now()
  if not first then first = now end
  k = k + 1
  times[k] = (now - first) % WRAP
  if k >= count then
    t:unregister()
    print("SAMPLES " .. table.concat(times, " "))
  end
end)
