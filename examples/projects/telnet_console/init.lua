-- init.lua (telnet_console): wait for Wi-Fi, then start the console and the
-- heartbeat. Firmware 2.2 (static timers, node.output with a function).
--
-- On the host: nodemcu-host --remap 192.168.1.10=127.0.0.1:1883 init.lua
-- The console's port 23 is mapped to a free local port (printed on stderr);
-- connect with: nc 127.0.0.1 <port>

print("telnet_console booting")
wifi.setmode(wifi.STATION)

tmr.alarm(0, 1000, tmr.ALARM_AUTO, function()
  if wifi.sta.status() ~= 5 then
    print("waiting for IP, status " .. wifi.sta.status())
    return
  end
  tmr.unregister(0)
  print("IP " .. wifi.sta.getip())
  dofile("console.lua")
  dofile("app.lua")
end)
