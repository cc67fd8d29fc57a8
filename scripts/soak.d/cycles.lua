-- Connect/close cycles against a broker; prints VmRSS (KiB) after `first` and after
-- `total` cycles. Usage: nodemcu-host cycles.lua TOTAL FIRST PORT
-- Run by scripts/soak (long form) and ScenarioTests' soak test (short form).
local total, first, port = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
local function rss()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end
local m = mqtt.Client("soak", 30)
local n = 0
local v22 = node.setonerror == nil  -- setonerror exists in 3.0 only
local cycle
local function connected(c)
  n = n + 1
  if n == first then print("rss_first", rss()) end
  if n == total then
    collectgarbage()
    print("rss_last", rss())
    os.exit(0)
  end
  c:close()
  -- 2.2: close() fires no offline, connect again at once; 3.0: from offline.
  if v22 then cycle() end
end
function cycle() m:connect("127.0.0.1", port, 0, connected, function(_, r) print("connfail", r) os.exit(1) end) end
m:on("offline", function() if not v22 then cycle() end end)
cycle()
