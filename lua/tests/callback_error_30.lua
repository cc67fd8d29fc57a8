-- scenario: under 3.0 a timer callback error prints the traceback, then --on-error exit
-- args: --firmware 3.0
-- status: 1
tmr.create():alarm(10, tmr.ALARM_SINGLE, function() error("sensor missing") end)
tmr.create():alarm(500, tmr.ALARM_SINGLE, function() print("never") end)
