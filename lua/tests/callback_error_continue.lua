-- scenario: --on-error continue abandons the failed callback and goes on
-- args: --on-error continue
tmr.create():alarm(10, tmr.ALARM_SINGLE, function() error("first") end)
tmr.create():alarm(30, tmr.ALARM_SINGLE, function() print("still alive") end)
