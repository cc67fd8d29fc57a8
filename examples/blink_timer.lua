-- Blink an LED and report a counter, the way device scripts use timers.
-- Runs for three blinks and stops by itself (a device would blink for ever).
local LED = 4
local blinks = 0
gpio = gpio or { mode = function() end, write = function() end, OUTPUT = 1, HIGH = 1, LOW = 0 }
gpio.mode(LED, gpio.OUTPUT)

local blinker = tmr.create()
blinker:register(200, tmr.ALARM_AUTO, function(t)
  blinks = blinks + 1
  gpio.write(LED, blinks % 2 == 1 and gpio.HIGH or gpio.LOW)
  print(("blink %d at %d ms"):format(blinks, tmr.now() // 1000))
  if blinks == 3 then
    t:unregister()
    print("done")
  end
end)
blinker:start()
print("blinking every 200 ms")
