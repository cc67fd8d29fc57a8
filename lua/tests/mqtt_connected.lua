-- scenario: a connected client against mosquitto: argument errors, size limits, table forms, callbacks and their arguments, last callback wins, close per profile
-- firmware: 2.2 3.0
-- broker: mosquitto
-- args: --remap broker.local=127.0.0.1:{port}
local v30 = node.setonerror ~= nil
local function try(label, f)
  local r = table.pack(pcall(f))
  if r[1] then print(label, "ok", r.n - 1, table.unpack(r, 2, r.n)) else print(label, "error", r[2]) end
end
local prefix = "mqtt_connected/" .. (v30 and "30" or "22")
local sub = prefix .. "/sub/"

local m = mqtt.Client("mqtt_connected_" .. (v30 and "30" or "22"), 10, "", "", 1)
local L = v30 and 1460 or 1024
local step

m:on("offline", function(c) print("offline", c == m, pcall(function() return c:publish("t", "x", 0, 0) end)) end)
m:on("message", function(c, topic, ...)
  print("message", c == m, topic, select("#", ...), ...)
  step()
end)

local steps = {
  function()
    -- empty payload: the callback gets (client, topic) only; a number payload is converted
    print("publish empty", m:publish(sub .. "empty", "", 0, 0))
  end,
  function()
    print("publish number", m:publish(sub .. "number", 42, 0, 0))
  end,
  function()
    -- the most recently supplied puback function fires for both acknowledgements
    local n = 0
    print("publish qos1 a", m:publish(prefix .. "/acked", "a", 1, 0, function() print("puback first (never)") end))
    print("publish qos1 b", m:publish(prefix .. "/acked", "b", 1, 0, function(c)
      n = n + 1
      print("puback second", n, c == m)
      if n == 2 then
        print("unsubscribe", m:unsubscribe(sub .. "#", function(c2)
          print("unsuback", c2 == m)
          step()
        end))
      end
    end))
  end,
  function()
    -- a QoS 0 publish: puback once it has been handed to the network
    print("publish qos0", m:publish(prefix .. "/q0", "x", 0, 0, function(c)
      print("puback qos0", c == m)
      step()
    end))
  end,
  function()
    print("close", m:close())
    try("publish after close", function() return m:publish(prefix .. "/late", "x", 0, 0) end)
    if not v30 then
      -- 2.2: no offline; once the TCP teardown is over publish returns false
      local t = tmr.create()
      t:alarm(5, tmr.ALARM_AUTO, function()
        local ok, result = pcall(m.publish, m, prefix .. "/late", "x", 0, 0)
        if ok then
          print("publish after teardown", result)
          t:unregister()
        end
      end)
    end
  end,
}
step = function() table.remove(steps, 1)() end

m:connect("broker.local", 1883, function(c)
  print("connected", c == m)
  try("connect again", function() return m:connect("broker.local", 1883) end)

  -- publish: the arguments
  try("publish()", function() return m:publish() end)
  try("publish(t)", function() return m:publish("t") end)
  try("publish(t, x)", function() return m:publish("t", "x") end)
  try("publish(t, x, 0)", function() return m:publish("t", "x", 0) end)
  try("publish(t, x, 0, false)", function() return m:publish("t", "x", 0, false) end)
  try("publish(t, table, 0, 0)", function() return m:publish("t", {}, 0, 0) end)
  try("publish(empty topic)", function() return m:publish("", "x", 0, 0) end)

  -- the size limit: 3 + 2 + #topic + (2 if qos > 0) + #payload <= L
  try("publish L", function() return m:publish("s", ("x"):rep(L - 6), 0, 0) end)
  try("publish L+1", function() return m:publish("s", ("x"):rep(L - 5), 0, 0) end)
  try("publish qos1 L+1", function() return m:publish("s", ("x"):rep(L - 7), 1, 0) end)

  -- subscribe and unsubscribe: the arguments
  try("subscribe(t)", function() return m:subscribe("t") end)
  try("subscribe(table)", function() return m:subscribe({}) end)
  try("subscribe({t = x})", function() return m:subscribe({t = "x"}) end)
  try("subscribe({[''] = 0})", function() return m:subscribe({[""] = 0}) end)
  try("subscribe(big table)", function() return m:subscribe({[("x"):rep(L)] = 0}) end)
  try("subscribe(big)", function() return m:subscribe(("x"):rep(L), 0) end)
  try("subscribe('')", function() return m:subscribe("", 0) end)
  try("subscribe({[true] = 0})", function() return m:subscribe({[true] = 0}) end)
  try("unsubscribe({[{}] = 1})", function() return m:unsubscribe({[{}] = 1}) end)
  try("unsubscribe()", function() return m:unsubscribe() end)
  try("unsubscribe({})", function() return m:unsubscribe({}) end)
  try("unsubscribe({[''] = 1})", function() return m:unsubscribe({[""] = 1}) end)
  try("unsubscribe(big table)", function() return m:unsubscribe({[("x"):rep(L)] = true}) end)
  try("unsubscribe(big)", function() return m:unsubscribe(("x"):rep(L)) end)

  print("subscribe", m:subscribe(sub .. "#", 0, function(c2)
    print("suback", c2 == m)
    step()
  end))
end, function(c, reason) print("connfail (never)", reason) end)
