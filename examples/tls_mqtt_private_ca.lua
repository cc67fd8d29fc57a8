-- MQTT over TLS to a broker whose certificate comes from a private CA. Either the
-- script trusts the CA (tls.cert.verify(pem), as on the device), or the host does:
--   nodemcu-host --cafile ca.crt --remap broker.local:8883=127.0.0.1:8883 examples/tls_mqtt_private_ca.lua
-- (without --cafile and without tls.cert.verify the system store decides).
-- test-broker: mosquitto-tls
-- test-expect: secure connection up
-- test-expect: echo over TLS: hello
local m = mqtt.Client("tls-example", 30)
m:on("message", function(c, topic, data)
  print("echo over TLS: " .. data)
  c:close()
end)
m:connect("broker.local", 8883, 1, function(c)
  print("secure connection up")
  c:subscribe("examples/tls", 0, function(c) c:publish("examples/tls", "hello", 0, 0) end)
end, function(c, reason) print("connection failed", reason) end)
