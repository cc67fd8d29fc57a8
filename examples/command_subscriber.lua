-- Subscribe to a command topic and react: "led on", "led off", "status".
-- Answers go to <prefix>/state. Try it with:
--   nodemcu-host --remap broker.local=127.0.0.1:1883 examples/command_subscriber.lua
--   mosquitto_pub -t nodemcu/NodeMCU_<chipid hex>/cmd -m "led on"
-- test-broker: mosquitto
-- test-before: -r -t nodemcu/NodeMCU_abcdef/cmd -m led on
-- test-args: --run-for 1.5
-- test-expect: subscribed to nodemcu/NodeMCU_abcdef/cmd
-- test-expect: command: led on
-- test-expect: LED is on
local prefix = "nodemcu/NodeMCU_" .. string.format("%x", node.chipid())
local led = false

local m = mqtt.Client()  -- client id NodeMCU_<chip id in hex>

local function report(client)
  client:publish(prefix .. "/state", led and "on" or "off", 0, 1)
end

m:on("message", function(client, topic, data)
  print("command: " .. (data or ""))
  if data == "led on" then
    led = true
  elseif data == "led off" then
    led = false
  elseif data ~= "status" then
    print("unknown command")
    return
  end
  print("LED is " .. (led and "on" or "off"))
  report(client)
end)

m:connect("broker.local", 1883, function(client)
  client:subscribe(prefix .. "/cmd", 1, function()
    print("subscribed to " .. prefix .. "/cmd")
  end)
end)
