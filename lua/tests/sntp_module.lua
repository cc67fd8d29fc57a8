-- scenario: sntp (more-modules §8) answered from the host clock: the RTC is set,
-- ok_cb gets the server and the info table; errors; a dns failure from the board
-- firmware: 2.2 3.0
local function try(label, f)
  local ok, err = pcall(f)
  print(label, ok, err)
end
try("long name", function() sntp.sync(string.rep("a", 128)) end)
try("setoffset()", function() sntp.setoffset() end)
print("offset", sntp.getoffset())
sntp.sync("192.168.7.1", function(sec, usec, server, info)
  local now = os.time()
  print("synced", math.abs(sec - now) <= 2, server, info.offset_s ~= nil, info.delay_us, info.stratum,
    info.root_delay_us, info.root_maxerr_us, info.leap)
  print("rtc", math.abs((rtctime.get()) - now) <= 2)
  sntp.sync(nil, function(_, _, server2) print("cached server", server2) end, function(code) print("err", code) end)
end, function(code, text) print("error", code, text) end)
try("in progress", function() sntp.sync("10.0.0.1") end)
