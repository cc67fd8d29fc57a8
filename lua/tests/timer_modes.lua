-- scenario: SINGLE, SEMI and AUTO semantics and the callback argument
local semi, auto = 0, 0
local s = tmr.create()
s:register(10, tmr.ALARM_SEMI, function(t)
  semi = semi + 1
  print("semi", semi, t == s, t:state())
  if semi < 3 then t:start() end
end)
print("registered, idle:", s:state())
print("start:", s:start(), "again:", s:start())
local a = tmr.create()
a:alarm(15, tmr.ALARM_AUTO, function(t)
  auto = auto + 1
  if auto == 4 then
    print("auto stop:", t:stop(), "state:", t:state())
    t:unregister()
    print("after unregister:", t:state())
  end
end)
print(tmr.ALARM_SINGLE, tmr.ALARM_AUTO, tmr.ALARM_SEMI)
