-- scenario: --on-error restart after an mqtt callback error reboots: connections dropped, the script runs again; gives up after 5 restarts in 10 s
-- broker: mosquitto
-- args: --on-error restart --remap broker.local=127.0.0.1:{port}
-- status: 1
local m = mqtt.Client("mqtt_callback_error_restart", 10, "", "", 1)
m:connect("broker.local", 1883, function(c)
  print("connected, boot reason", select(2, node.bootreason()))
  error("crash")
end)
