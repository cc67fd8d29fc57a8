-- scenario: a typical init.lua: wait for wifi.sta.status() == 5 in a timer, then start
-- the application; the board's association time decides how long
-- args: --board {dir}/boards/wifi.board
-- firmware: 2.2 3.0
local tries = 0
local t = tmr.create()
t:alarm(20, tmr.ALARM_AUTO, function(timer)
  tries = tries + 1
  if wifi.sta.status() ~= wifi.STA_GOTIP then return end
  timer:unregister()
  print("got ip after polling", tries > 1, wifi.sta.getip())
  print("starting app", "ESP-" .. node.chipid())
end)
print("waiting", wifi.sta.status(), wifi.sta.getip())
