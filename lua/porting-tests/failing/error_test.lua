-- A plain test file that fails: an error in a timer callback.
tmr.create():alarm(10, tmr.ALARM_SINGLE, function() error("broken callback") end)
