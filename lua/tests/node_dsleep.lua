-- firmware: 2.2 3.0
-- args: --on-error exit
-- node.dsleep(us): a simulated deep sleep, then a reboot with boot reason 5;
-- dsleep(0) sleeps until a reset that never comes: the process ends with status 0.
local raw, reason = node.bootreason()
print("boot", raw, reason)
if reason == 5 then
  node.dsleep(0)
else
  tmr.create():alarm(1000, tmr.ALARM_SINGLE, function() print("never: asleep") end)
  node.dsleep(50000)
  print("dsleep returns")
end
