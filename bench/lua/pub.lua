-- bench/lua/pub.lua HOST PORT TOPIC N QOS SIZE MODE
-- Publishes N messages of SIZE bytes to TOPIC at QOS, then closes.
--   MODE "burst": publish calls in the connect callback (one chunk) until all N are
--     queued or the queue refuses one (the host caps a device's MQTT queues at 1 MiB, as
--     the device's heap does: publish returns false); then more from each puback;
--   MODE "paced": the next publish is made from the puback callback.
-- The puback callback (PUBACK/PUBCOMP, or "handed to the network" at QoS 0)
-- counts completions; after N it prints "DONE n" and closes the client.
local host, port, topic = arg[1], tonumber(arg[2]), arg[3]
local n, qos, size, mode = tonumber(arg[4]), tonumber(arg[5]), tonumber(arg[6]), arg[7]
local payload = string.rep("x", size)
local done, sent = 0, 0

local m = mqtt.Client("nb-pub-" .. topic:gsub("/", "-"), 60)

-- Queues messages until all N are queued or the queue is full.
local function fill(c)
  while sent < n do
    if not c:publish(topic, payload, qos, 0) then return end
    sent = sent + 1
  end
end

local function on_puback(c)
  done = done + 1
  if done >= n then
    print("DONE " .. done)
    c:close()
    return
  end
  if mode == "paced" then
    sent = sent + 1
    c:publish(topic, payload, qos, 0)
  elseif sent < n then
    fill(c)
  end
end

m:connect(host, port, 0, function(c)
  sent = 1
  if not c:publish(topic, payload, qos, 0, on_puback) then
    print("PUBLISH FAILED"); os.exit(4)
  end
  if mode == "burst" then fill(c) end
end, function(c, reason)
  print("CONNFAIL " .. tostring(reason))
  os.exit(3)
end)
