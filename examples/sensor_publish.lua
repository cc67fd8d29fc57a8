-- Publish a sensor reading every few seconds from a timer, as a battery-powered
-- sensor node does. The reading is simulated; the timer starts only once the
-- broker has accepted the connection.
--   nodemcu-host --remap broker.local=127.0.0.1:1883 examples/sensor_publish.lua
-- test-broker: mosquitto
-- test-args: --run-for 1.5
-- test-expect: connected as sensor-
-- test-expect: published reading 1
local INTERVAL_MS = 1000
local id = "sensor-" .. node.chipid()
local topic = "sensors/" .. id .. "/temperature"
local count = 0

local m = mqtt.Client(id, 30)
local reader = tmr.create()

reader:register(INTERVAL_MS, tmr.ALARM_AUTO, function()
  count = count + 1
  -- A plausible temperature in °C with one decimal, like a DS18B20 gives.
  local celsius = 20 + (count * 7 % 50) / 10
  local payload = string.format('{"seq":%d,"celsius":%.1f,"uptime":%d}', count, celsius, tmr.time())
  m:publish(topic, payload, 1, 0, function() print("published reading " .. count) end)
end)

m:on("offline", function() print("offline; readings paused") reader:stop() end)
m:connect("broker.local", 1883, function(client)
  print("connected as " .. id)
  reader:start()
end, function(client, reason)
  print("could not connect: " .. reason)
end)
