-- scenario: with --on-error continue a failed mqtt callback is abandoned and the client goes on
-- firmware: 2.2 3.0
-- broker: mosquitto
-- args: --on-error continue --remap broker.local=127.0.0.1:{port}
local id = "mqtt_callback_error_continue_" .. (node.setonerror and "30" or "22")
local m = mqtt.Client(id, 10, "", "", 1)
m:on("message", function(c, topic, data)
  print("message", topic, data)
  if data == "first" then error("bad payload " .. data) end
  c:close()
end)
m:connect("broker.local", 1883, function(c)
  c:subscribe(id .. "/t", 0, function()
    c:publish(id .. "/t", "first", 0, 0)
    c:publish(id .. "/t", "second", 0, 0)
  end)
end)
