-- bench/lua/rtt.lua HOST PORT TOPIC N QOS SIZE
-- Ping-pong on its own subscription: once subscribed, publish one message;
-- each time it comes back (on("message")) record the round trip with
-- tmr.now() and publish the next one from the callback. After N round trips
-- print "SAMPLES us us ..." and close.
local host, port, topic = arg[1], tonumber(arg[2]), arg[3]
local n, qos, size = tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6])
local payload = string.rep("x", size)
local samples, k, t0 = {}, 0, 0
local WRAP = 2147483648 -- tmr.now() is masked to 31 bits

local m = mqtt.Client("nb-rtt-" .. topic:gsub("/", "-"), 60)
m:on("message", function(c, t, data)
  local t1 = tmr.now()
  k = k + 1
  samples[k] = (t1 - t0) % WRAP
  if k >= n then
    print("SAMPLES " .. table.concat(samples, " "))
    c:close()
    return
  end
  t0 = tmr.now()
  c:publish(topic, payload, qos, 0)
end)

m:connect(host, port, 0, function(c)
  c:subscribe(topic, qos, function(c2)
    t0 = tmr.now()
    c2:publish(topic, payload, qos, 0)
  end)
end, function(c, reason)
  print("CONNFAIL " .. tostring(reason))
  os.exit(3)
end)
