-- app.lua (relay_mqtt): switch the relay on MQTT commands and report its state.
--   <base>/<client id>/set    ON | OFF | TOGGLE | RESTART (commands)
--   <base>/<client id>/state  {"state":..., "level":..., "boot":...} (retained)
--   <base>/<client id>/status online | offline (retained, offline as the will)

local relay = require("relay")
local config = sjson.decode(file.getcontents("config.json"))
local clientId = "ESP-" .. node.chipid()
local prefix = config.base .. "/" .. clientId
local _, bootReason = node.bootreason()

local m = mqtt.Client(clientId, 30, config.user, config.password, 1)
m:lwt(prefix .. "/status", "offline", 1, 1)

local function report()
  m:publish(prefix .. "/state", sjson.encode({
    state = relay.state(), level = relay.level(), boot = bootReason, uptime = tmr.time(),
  }), 1, 1)
end

local commands = {
  ON = function() relay.set(true) report() end,
  OFF = function() relay.set(false) report() end,
  TOGGLE = function() relay.toggle() report() end,
  RESTART = function()
    print("restart requested")
    -- let the broker have the state first; restart once the client is gone
    m:on("offline", function() node.restart() end)
    m:close()
  end,
}

m:on("message", function(client, topic, data)
  local command = commands[(data or ""):upper()]
  print("command " .. tostring(data) .. " on " .. topic)
  if command then command() else print("unknown command") end
end)

local retry = tmr.create()
local function connect()
  m:connect(config.broker, config.port, false, function(client)
    print("connected as " .. clientId)
    client:subscribe(prefix .. "/set", 1, function()
      client:publish(prefix .. "/status", "online", 1, 1)
      report()
    end)
  end, function(client, reason)
    print("connect failed: " .. reason)
    retry:alarm(5000, tmr.ALARM_SINGLE, connect)
  end)
end
m:on("offline", function()
  print("offline, reconnecting in 5 s")
  retry:alarm(5000, tmr.ALARM_SINGLE, connect)
end)
connect()
