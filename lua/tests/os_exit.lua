-- scenario: os.exit(n) ends the process with status n, even with timers armed
-- status: 3
tmr.create():alarm(10000, tmr.ALARM_AUTO, function() end)
print("exiting")
os.exit(3)
