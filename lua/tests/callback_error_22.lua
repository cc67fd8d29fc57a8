-- scenario: an error in a timer callback under 2.2 prints the PANIC line and exits with 1
-- status: 1
print("start")
tmr.create():alarm(10, tmr.ALARM_SINGLE, function() local x = nil; print(x.field) end)
tmr.create():alarm(500, tmr.ALARM_SINGLE, function() print("never") end)
