-- scenario: the wifi module (spec §5.4): constants, modes, station config forms and
-- errors, getters before and after the simulated association, eventmon errors
-- args: --board {dir}/boards/wifi.board
-- firmware: 2.2 3.0
local function try(label, f)
  local ok, err = pcall(f)
  print(label, ok, err)
end
print("modes", wifi.NULLMODE, wifi.STATION, wifi.SOFTAP, wifi.STATIONAP, wifi.getmode())
print("status constants", wifi.STA_IDLE, wifi.STA_CONNECTING, wifi.STA_WRONGPWD, wifi.STA_APNOTFOUND, wifi.STA_FAIL, wifi.STA_GOTIP)
local ev = wifi.eventmon
print("events", ev.STA_CONNECTED, ev.STA_DISCONNECTED, ev.STA_AUTHMODE_CHANGE, ev.STA_GOT_IP, ev.STA_DHCP_TIMEOUT,
  ev.AP_STACONNECTED, ev.AP_STADISCONNECTED, ev.AP_PROBEREQRECVED, ev.WIFI_MODE_CHANGED, ev.EVENT_MAX)
print("reasons", ev.reason.ASSOC_LEAVE, ev.reason.NO_AP_FOUND, ev.reason.AUTH_FAIL, ev.reason["4WAY_HANDSHAKE_TIMEOUT"], ev.reason.BEACON_TIMEOUT)
print("at boot", wifi.sta.status(), wifi.sta.getip(), wifi.sta.getrssi())
print("identity", wifi.sta.getmac(), wifi.sta.gethostname(), wifi.ap.getmac())
print("config", wifi.sta.getconfig())
try("setmode(4)", function() return wifi.setmode(4) end)
try("config old form", function() return wifi.sta.config("ssid", "password") end)
try("config long pwd", function() return wifi.sta.config({ssid = "x", pwd = "short"}) end)
try("eventmon 11", function() wifi.eventmon.register(11, print) end)
try("eventmon -1", function() wifi.eventmon.register(-1, print) end)
print("sethostname", wifi.sta.sethostname("sensor-1"), wifi.sta.sethostname("-bad"), wifi.sta.gethostname())
ev.register(ev.STA_CONNECTED, function(t) print("STA_CONNECTED", t.SSID, t.BSSID, t.channel) end)
ev.register(ev.STA_GOT_IP, function(t)
  print("STA_GOT_IP", t.IP, t.netmask, t.gateway)
  print("connected", wifi.sta.status(), wifi.sta.getip())
  print("rssi", wifi.sta.getrssi(), wifi.sta.getbroadcast())
  wifi.sta.getap(function(list)
    for k, v in pairs(list) do print("ap", k, v) end
    wifi.sta.getap(1, function(list)
      for k, v in pairs(list) do print("ap1", k, v) end
      wifi.sta.disconnect()
      print("after disconnect", wifi.sta.status(), wifi.sta.getip())
    end)
  end)
end)
ev.register(ev.STA_DISCONNECTED, function(t)
  print("STA_DISCONNECTED", t.SSID, t.BSSID, t.reason)
  print("mode", wifi.setmode(wifi.SOFTAP), wifi.getmode(), wifi.ap.getip())
end)
ev.register(ev.WIFI_MODE_CHANGED, function(t) print("WIFI_MODE_CHANGED", t.old_mode, t.new_mode) end)
print("end of script", wifi.sta.status())
