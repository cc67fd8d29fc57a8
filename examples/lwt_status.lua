-- Online/offline status with a Last Will: the broker publishes the retained
-- "offline" if the device vanishes; the device publishes a retained "online"
-- once connected. lwt() must come before connect().
--   nodemcu-host --remap broker.local=127.0.0.1:1883 examples/lwt_status.lua
-- test-broker: mosquitto
-- test-args: --run-for 1.5
-- test-expect: status online published
local status = "devices/" .. string.format("%x", node.chipid()) .. "/status"

local m = mqtt.Client("lwt-example", 10)
m:lwt(status, "offline", 1, 1)
m:connect("broker.local", 1883, function(client)
  client:publish(status, "online", 1, 1, function()
    print("status online published")
  end)
end)
