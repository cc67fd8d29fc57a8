-- bench/lua/clients.lua HOST PORT COUNT
-- Connects COUNT clients (COUNT may be 0: then only an idle timer keeps the
-- process alive), prints "READY n" when all are connected, then idles until
-- the harness stops it.
local host, port, count = arg[1], tonumber(arg[2]), tonumber(arg[3])
local clients, connected = {}, 0

-- Keeps the process alive while idle (and bounds its life: 10 minutes).
tmr.create():alarm(600000, tmr.ALARM_SINGLE, function() os.exit(0) end)

local function ready()
  collectgarbage()
  print("READY " .. connected)
end

if count == 0 then ready() end
for i = 1, count do
  local m = mqtt.Client("nb-cl-" .. port .. "-" .. i, 60)
  clients[i] = m
  m:connect(host, port, 0, function(c)
    connected = connected + 1
    if connected == count then ready() end
  end, function(c, reason)
    print("CONNFAIL " .. tostring(reason))
    os.exit(3)
  end)
end
