-- init.lua (telnet_console): wait for Wi-Fi, then start the console and the
-- heartbeat. Runs on firmware 2.2 and 3.0 (console.lua picks the node.output
-- style the firmware has).
--
-- On the host: nodemcu-host --remap 192.168.1.10=127.0.0.1:1883 init.lua
-- The console's port 23 is mapped to a free local port (printed on stderr);
-- connect with: nc 127.0.0.1 <port>

print("telnet_console booting")
wifi.setmode(wifi.STATION)

tmr.create():alarm(1000, tmr.ALARM_AUTO, function(t)
  if wifi.sta.status() ~= 5 then
    print("waiting for IP, status " .. wifi.sta.status())
    return
  end
  t:unregister()
  print("IP " .. wifi.sta.getip())
  dofile("console.lua")
  dofile("app.lua")
end)
