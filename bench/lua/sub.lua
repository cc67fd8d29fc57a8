-- bench/lua/sub.lua HOST PORT TOPIC N QOS
-- Subscribes to TOPIC at QOS, prints "READY" once the SUBACK is in, counts
-- messages in on("message") and, at N, prints "DONE n" and closes the client
-- (the process then exits: nothing is left to do).
local host, port, topic = arg[1], tonumber(arg[2]), arg[3]
local n, qos = tonumber(arg[4]), tonumber(arg[5])
local count = 0

local m = mqtt.Client("nb-sub-" .. topic:gsub("/", "-"), 60)
m:on("message", function(c, t, data)
  count = count + 1
  if count == n then
    print("DONE " .. count)
    c:close()
  end
end)

m:connect(host, port, 0, function(c)
  c:subscribe(topic, qos, function(c2)
    print("READY")
  end)
end, function(c, reason)
  print("CONNFAIL " .. tostring(reason))
  os.exit(3)
end)
