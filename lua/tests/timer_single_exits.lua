-- scenario: a 50 ms SINGLE timer fires once and the process exits with 0 right after
local started = tmr.now()
tmr.create():alarm(50, tmr.ALARM_SINGLE, function(t)
  print("fired after >= 50 ms:", tmr.now() - started >= 50000)
  print("unregistered before the callback:", t:state() == nil)
end)
print("armed")
