-- A plain test file: passes unless it raises an error.
local t = tmr.create()
t:alarm(3600 * 1000, tmr.ALARM_SINGLE, function() print("an hour later: " .. tmr.time()) end)
