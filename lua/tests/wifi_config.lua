-- scenario: wifi.sta.config with callbacks, a wrong password from the board, then the
-- right one; events in order, never inside the call
-- args: --board {dir}/boards/wifi_pwd.board
-- firmware: 2.2 3.0
local cfg = {ssid = "Home", pwd = "not-the-password", auto = true}
cfg.connected_cb = function(t) print("connected_cb", t.SSID, t.channel) end
cfg.disconnected_cb = function(t)
  print("disconnected_cb", t.SSID, t.reason, wifi.sta.status())
  if t.reason == wifi.eventmon.reason["4WAY_HANDSHAKE_TIMEOUT"] then
    print("config again", wifi.sta.config({ssid = "Home", pwd = "the-password", save = false}))
  end
end
cfg.got_ip_cb = function(t) print("got_ip_cb", t.IP, wifi.sta.status()); wifi.setmode(wifi.NULLMODE) end
print("config", wifi.sta.config(cfg))
print("status after config", wifi.sta.status())
print("getconfig", wifi.sta.getconfig())
local t = wifi.sta.getconfig(true)
print("getconfig table", t.ssid, t.pwd, t.bssid_set, t.bssid)
