-- scenario: an error in an mqtt callback prints the PANIC line in both profiles (3.0: even with node.setonerror), then --on-error exit
-- firmware: 2.2 3.0
-- broker: mosquitto
-- args: --remap broker.local=127.0.0.1:{port}
-- status: 1
local m = mqtt.Client("mqtt_callback_error_" .. (node.setonerror and "30" or "22"), 10, "", "", 1)
m:connect("broker.local", 1883, function(c)
  print("connected")
  local sensor = nil
  print(sensor.value)
end)
tmr.create():alarm(5000, tmr.ALARM_SINGLE, function() print("never") end)
-- 3.0 routes tmr errors to node.setonerror, but mqtt callback errors still PANIC
if node.setonerror then node.setonerror(function(trace) print("handler (never for mqtt)", trace) end) end
