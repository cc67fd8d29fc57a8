-- scenario: --on-error restart re-runs the script in a fresh state; gives up after 5 restarts in 10 s
-- args: --on-error restart
-- status: 1
print("boot", counter)
counter = 1
tmr.create():alarm(10, tmr.ALARM_SINGLE, function() error("crash") end)
