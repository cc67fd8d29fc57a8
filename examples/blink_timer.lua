-- A heartbeat from a timer, the way device scripts blink an LED or poll a
-- sensor. It stops itself after three beats (a device would go on for ever).
-- test-expect: beating every 200 ms
-- test-expect: beat 3
-- test-expect: done
local beats = 0

local heartbeat = tmr.create()
heartbeat:register(200, tmr.ALARM_AUTO, function(t)
  beats = beats + 1
  print(("beat %d, uptime %d ms"):format(beats, tmr.now() // 1000))
  if beats == 3 then
    t:unregister()
    print("done")
  end
end)
heartbeat:start()
print("beating every 200 ms")
