-- app.lua (telnet_console): announce the console and a heartbeat over MQTT.

local BROKER, PORT = "192.168.1.10", 1883
local id = "ESP-" .. node.chipid()
local topic = "devices/" .. id

local m = mqtt.Client(id, 60)
m:lwt(topic .. "/status", "offline", 0, 1)

local heartbeat = tmr.create()
local retry = tmr.create()
local function beat()
  m:publish(topic .. "/heartbeat", sjson.encode({ heap = node.heap(), uptime = tmr.time() }), 0, 0)
end

local function start()
  m:connect(BROKER, PORT, 0, function(client)
    client:publish(topic .. "/status", "online", 0, 1)
    client:publish(topic .. "/console", wifi.sta.getip() .. ":23", 0, 1)
    beat()
    heartbeat:alarm(30000, tmr.ALARM_AUTO, beat)
    print("announced on " .. topic)
  end, function(client, reason)
    print("MQTT failed: " .. reason)
    retry:alarm(10000, tmr.ALARM_SINGLE, start)
  end)
end
m:on("offline", function()
  heartbeat:stop()
  retry:alarm(10000, tmr.ALARM_SINGLE, start)
end)
start()
