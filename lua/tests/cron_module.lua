-- scenario: cron (more-modules §14): mask parsing errors, entries driven by the RTC at
-- minute starts
-- firmware: 2.2 3.0
local function try(label, f)
  local ok, err = pcall(f)
  print(label, ok, err)
end
try("range", function() cron.schedule("1-5 * * * *", print) end)
try("out of range", function() cron.schedule("* 24 * * *", print) end)
try("each", function() cron.schedule("*/60 * * * *", print) end)
try("trailing", function() cron.schedule("* * * * * x", print) end)
try("day 0", function() cron.schedule("* * 0 * *", print) end)
try("tabs", function() cron.schedule("*\t* * * *", print):unschedule() end)
try("not fn", function() cron.schedule("* * * * *", 1) end)
-- 2020-09-13 12:26:58 UTC (a Sunday): the next minute starts 2 s later.
rtctime.set(1600000018)
local fired = 0
local e = cron.schedule("27 12 13 9 0", function(entry)
  fired = fired + 1
  print("fired", fired, (rtctime.get()) % 60, math.type(entry) == nil and type(entry))
  entry:unschedule()
end)
local never = cron.schedule("27 12 13 9 1", function() print("weekday AND day: never") end)
tmr.create():alarm(3000, tmr.ALARM_SINGLE, function() never:unschedule(); print("done", fired) end)
