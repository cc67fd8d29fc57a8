-- The reconnect pattern from the mqtt documentation's Notes: handle failures in
-- the connfail callback and try again from a timer (never use autoreconnect).
-- The document calls mqtt:connect on the module table; real scripts call it on
-- the client, as here.
--   nodemcu-host --remap broker.local=127.0.0.1:1883 examples/reconnect.lua
-- test-broker: mosquitto
-- test-args: --run-for 1.5
-- test-expect: connected
local RETRY_MS = 10 * 1000

m = mqtt.Client("reconnect-example", 60)

function handle_mqtt_error(client, reason)
  print("connect failed, reason " .. reason .. "; retrying in " .. RETRY_MS / 1000 .. " s")
  tmr.create():alarm(RETRY_MS, tmr.ALARM_SINGLE, do_mqtt_connect)
end

function do_mqtt_connect()
  m:connect("broker.local", 1883, function(client) print("connected") end, handle_mqtt_error)
end

-- A lost connection is retried the same way.
m:on("offline", function(client)
  print("offline; reconnecting")
  tmr.create():alarm(RETRY_MS, tmr.ALARM_SINGLE, do_mqtt_connect)
end)

do_mqtt_connect()
