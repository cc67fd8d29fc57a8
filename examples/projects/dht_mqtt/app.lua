-- app.lua (dht_mqtt): read a DHT sensor every `interval` seconds and publish the
-- reading as JSON to MQTT, stamped with the RTC time set by sntp.

local function readConfig(name)
  if not file.open(name, "r") then
    print("cannot open " .. name)
    return nil
  end
  local parts = {}
  repeat
    local chunk = file.read()
    if chunk then parts[#parts + 1] = chunk end
  until chunk == nil
  file.close()
  local ok, decoded = pcall(sjson.decode, table.concat(parts))
  if not ok then
    print("bad " .. name .. ": " .. tostring(decoded))
    return nil
  end
  return decoded
end

local config = readConfig("config.json")
if not config then return end

local clientId = "ESP-" .. node.chipid()
local client = mqtt.Client(clientId, config.keepalive or 60)
local statusTopic = config.topic .. "/status"
local readTimer = tmr.create()
local retryTimer = tmr.create()   -- one timer: connfail and offline may both fire
local sequence = 0

local function isoTime(seconds)
  local tm = rtctime.epoch2cal(seconds)
  return string.format("%04d-%02d-%02dT%02d:%02d:%02dZ",
    tm.year, tm.mon, tm.day, tm.hour, tm.min, tm.sec)
end

local function publishReading()
  local status, temp, humi = dht.read(config.dht_pin)
  local seconds = rtctime.get()
  sequence = sequence + 1
  local reading = { id = clientId, seq = sequence, heap = node.heap(), rssi = wifi.sta.getrssi() }
  if seconds > 0 then
    reading.time = seconds
    reading.iso = isoTime(seconds)
  end
  if status == dht.OK then
    reading.temperature = temp
    reading.humidity = humi
  elseif status == dht.ERROR_CHECKSUM then
    reading.error = "checksum"
  else
    reading.error = "timeout"
  end
  local payload = sjson.encode(reading)
  print("publish " .. payload)
  client:publish(config.topic, payload, 0, 0)
end

local function connect()
  client:connect(config.broker, config.port, 0, function(c)
    print("connected to " .. config.broker .. " as " .. clientId)
    c:publish(statusTopic, "online", 0, 1)
    publishReading()
    readTimer:alarm(config.interval * 1000, tmr.ALARM_AUTO, publishReading)
  end, function(c, reason)
    print("MQTT connect failed (" .. reason .. "), retrying in 5 s")
    retryTimer:alarm(5000, tmr.ALARM_SINGLE, connect)
  end)
end

client:lwt(statusTopic, "offline", 0, 1)
client:on("offline", function()
  print("MQTT offline, reconnecting")
  readTimer:stop()
  retryTimer:alarm(5000, tmr.ALARM_SINGLE, connect)
end)

-- Time first (readings carry timestamps); connect either way.
sntp.sync(config.ntp_server, function(sec, usec, server)
  print("time from " .. server .. ": " .. isoTime(sec))
  connect()
end, function(code)
  print("sntp failed (" .. code .. "), readings go out without time")
  connect()
end)
