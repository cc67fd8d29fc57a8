-- scenario: 2.2 clears the connfail callback at a good CONNACK, 3.0 keeps it; connect again after close
-- firmware: 2.2 3.0
-- broker: mosquitto
-- args: --remap broker.local=127.0.0.1:{port} --remap refused.local=127.0.0.1:{noport}
local m = mqtt.Client("mqtt_connfail_slot_" .. (node.setonerror and "30" or "22"), 10, "", "", 1)
local function reconnect(c)
  -- no connfail function this time: 2.2 has none left, 3.0 still has the first one
  print("connect to a refused port", c:connect("refused.local", 1883, function() print("connected (never)") end))
end
m:on("offline", function(c)
  print("offline")
  reconnect(c)
end)
m:connect("broker.local", 1883, function(c)
  print("connected")
  if c:close() then reconnect(c) end
end, function(c, reason)
  print("connfail", reason)
end)
