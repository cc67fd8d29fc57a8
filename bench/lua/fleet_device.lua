-- bench/fleet: one device of the fleet (nodemcu-host --devices N). Connects with its
-- default client id (NodeMCU_<chip id hex>) and publishes one 32-byte QoS 1 message
-- every arg[1] ms to fleet/<chip id>; the payload is its sequence number, space-padded.
local interval = tonumber(arg[1]) or 10000
local topic = "fleet/" .. node.chipid()
local seq = 0
local m = mqtt.Client()
local t = tmr.create()

local function publish()
  seq = seq + 1
  m:publish(topic, string.format("%-32d", seq), 1, 0)
end

t:register(interval, tmr.ALARM_AUTO, publish)
m:on("offline", function() print("offline after " .. seq) t:stop() end)
m:connect("broker.local", 1883, function()
  -- The Lua heap of this device once connected (bench/fleet's memory breakdown).
  print(string.format("lua heap %.1f KB", collectgarbage("count")))
  publish()
  t:start()
end, function(_, reason)
  print("could not connect: " .. reason)
end)
