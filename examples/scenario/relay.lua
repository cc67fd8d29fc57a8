-- A button (D2, to ground, pull-up on) toggles a relay (D1). The relay's state goes to
-- home/relay/state; "ON"/"OFF" on home/relay/set switches it. The script keeps its
-- MQTT connection itself: offline -> reconnect after RECONNECT_MS. A short keepalive
-- notices a dead (half-open) link within two periods of keepalive + 1 s (2.2).
--   nodemcu-host --remap 192.168.1.10=127.0.0.1:1883 --scenario relay_scenario.lua relay.lua
local BROKER, PORT = "192.168.1.10", 1883
local BUTTON, RELAY = 2, 1
local KEEPALIVE = 2
local RECONNECT_MS = 1000

local relay = 0
local online = false

gpio.mode(RELAY, gpio.OUTPUT)
gpio.write(RELAY, gpio.LOW)
gpio.mode(BUTTON, gpio.INT, gpio.PULLUP)

m = mqtt.Client("relay-" .. node.chipid(), KEEPALIVE)

local function publish_state()
  if online then
    m:publish("home/relay/state", relay == 1 and "ON" or "OFF", 1, 0)
  end
end

local function set_relay(level)
  relay = level
  gpio.write(RELAY, relay)
  print("relay " .. (relay == 1 and "ON" or "OFF"))
  publish_state()
end

gpio.trig(BUTTON, "down", function() set_relay(1 - relay) end)

local connect

m:on("message", function(client, topic, data)
  if topic == "home/relay/set" then set_relay(data == "ON" and 1 or 0) end
end)

m:on("offline", function(client)
  online = false
  print("offline")
  tmr.create():alarm(RECONNECT_MS, tmr.ALARM_SINGLE, connect)
end)

function connect()
  m:connect(BROKER, PORT, function(client)
    online = true
    print("connected")
    client:subscribe("home/relay/set", 1, function() publish_state() end)
  end, function(client, reason)
    print("connect failed " .. reason)
    tmr.create():alarm(RECONNECT_MS, tmr.ALARM_SINGLE, connect)
  end)
end

connect()
