-- scenario: enduser_setup as an already-configured station (more-modules §11)
-- firmware: 2.2 3.0
print("manual", enduser_setup.manual(), enduser_setup.manual(false))
wifi.eventmon.register(wifi.eventmon.WIFI_MODE_CHANGED, function(t) print("mode", t.old_mode, t.new_mode) end)
enduser_setup.start(function() print("onConnected", wifi.sta.status(), wifi.getmode()) end,
  function(code, text) print("onError", code, text) end)
print("started", wifi.getmode())
