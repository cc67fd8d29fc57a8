-- telemetry.lua: a device script. Connects to the broker, publishes a heartbeat
-- every 10 minutes (QoS 1) and, after 144 of them (24 hours), closes the connection,
-- so that the run ends by itself. Reconnects 5 s after losing the broker.
local payload = require("payload")

local BROKER, PORT = "broker.local", 1883
local PERIOD_MS = 10 * 60 * 1000
local LAST = 144

local count, done = 0, false
local m = mqtt.Client("porting-demo", 120)
local ticker = tmr.create()
local connect

local function retry()
  if not done then tmr.create():alarm(5000, tmr.ALARM_SINGLE, connect) end
end

local function beat()
  count = count + 1
  m:publish("demo/heartbeat", payload.heartbeat(count, tmr.time(), node.heap()), 1, 0, function()
    if count == LAST then
      done = true
      ticker:unregister()
      print("done: " .. count .. " heartbeats after " .. tmr.time() .. " s")
      m:close()
    end
  end)
end

connect = function()
  m:connect(BROKER, PORT, 0, 0, function()
    print("connected")
    ticker:alarm(PERIOD_MS, tmr.ALARM_AUTO, beat)
  end, function(_, reason)
    print("connect failed: " .. reason)
    retry()
  end)
end

m:on("offline", function()
  print("offline")
  ticker:stop()
  retry()
end)

connect()
