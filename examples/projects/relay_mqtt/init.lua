-- init.lua (relay_mqtt): restore the relay at once (before Wi-Fi, so a reboot does
-- not glitch the load), then start app.lua when the station gets its IP.
-- Firmware 3.0.
--
-- On the host: nodemcu-host --firmware 3.0 --remap 192.168.1.10=127.0.0.1:1883 init.lua

local relay = require("relay")
relay.restore()
print("relay_mqtt booting, chip " .. node.chipid() .. ", relay " .. relay.state())

local started = false
wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function(info)
  print("got IP " .. info.IP .. ", gateway " .. info.gateway)
  if not started then             -- the event fires again after every reconnect
    started = true
    dofile("app.lua")
  end
end)
wifi.eventmon.register(wifi.eventmon.STA_DISCONNECTED, function(info)
  print("Wi-Fi lost (reason " .. info.reason .. ")")
end)
wifi.setmode(wifi.STATION)
