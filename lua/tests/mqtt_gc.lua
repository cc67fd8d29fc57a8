-- scenario: a connected client without any script reference stays alive until teardown, then is collected; an idle client is collected with its callbacks
-- firmware: 2.2 3.0
-- broker: mosquitto
-- args: --remap broker.local=127.0.0.1:{port}
local v30 = node.setonerror ~= nil
local id = "mqtt_gc_" .. (v30 and "30" or "22")
local clients = setmetatable({}, {__mode = "k"})
local callbacks = setmetatable({}, {__mode = "k"})
local function full_gc() collectgarbage() collectgarbage() end
local function alive() return next(clients) ~= nil end

-- an idle client (never connected) and its callbacks are freed
local function make_idle()
  local idle = mqtt.Client(id .. "_idle", 10, "", "", 1)
  local cb = function() print("never") end
  idle:on("connect", cb)
  clients[idle], callbacks[cb] = true, true
end
make_idle()
full_gc()
print("idle client collected", not alive(), "callback released", next(callbacks) == nil)

-- a connected client kept only as a local (firmware examples keep it in a do ... end block)
local function start()
  local m = mqtt.Client(id, 10, "", "", 1)
  clients[m] = true
  m:on("message", function(c, topic, data)
    print("message", topic, data)
    print("close", c:close())
    if not v30 then
      -- 2.2: no offline; the client is collectable once the TCP teardown is over
      local t = tmr.create()
      t:alarm(5, tmr.ALARM_AUTO, function()
        full_gc()
        if not alive() then
          print("collected after teardown")
          t:unregister()
        end
      end)
    end
  end)
  m:on("offline", function(c)
    print("offline")
    tmr.create():alarm(1, tmr.ALARM_SINGLE, function()
      full_gc()
      print("collected after offline", not alive())
    end)
  end)
  m:connect("broker.local", 1883, function(c)
    print("connected")
    c:subscribe(id .. "/t", 0, function(c2) c2:publish(id .. "/t", "hello", 0, 0) end)
  end)
end
start()
full_gc()
print("after connect, no script reference, held", alive())
