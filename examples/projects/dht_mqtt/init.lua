-- init.lua (dht_mqtt): bring the station up, wait for an IP, then start app.lua.
-- Firmware 2.2. The station credentials come from config.json; a device that
-- already has them saved in flash connects on its own.
--
-- On the host: nodemcu-host --remap 192.168.1.10=127.0.0.1:1883 --board board.txt init.lua
-- (board.txt puts a DHT22 on GPIO 4; without it the app reports a sensor timeout).

print("\ndht_mqtt booting, chip " .. node.chipid() .. ", boot reason " .. node.bootreason())

wifi.setmode(wifi.STATION)

local attempts = 0
local waitTimer = tmr.create()
waitTimer:alarm(500, tmr.ALARM_AUTO, function(t)
  if wifi.sta.status() == 5 then           -- wifi.STA_GOTIP
    t:unregister()
    print("Wi-Fi up, IP " .. wifi.sta.getip())
    dofile("app.lua")
  else
    attempts = attempts + 1
    if attempts % 10 == 0 then print("still waiting for Wi-Fi, status " .. wifi.sta.status()) end
    if attempts > 60 then                   -- 30 s without an IP: start over
      print("no Wi-Fi, restarting")
      node.restart()
    end
  end
end)
