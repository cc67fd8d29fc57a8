-- scenario: a QoS 0 publish loop driven by the puback callback does not starve the loop's sockets: a message another client sends arrives while the loop runs (on the device TCP paces the sends and incoming data is handled in between)
-- firmware: 2.2 3.0
-- broker: mosquitto
-- args: --remap broker.local=127.0.0.1:{port}
local id = "mqtt_publish_loop_" .. (node.setonerror and "30" or "22")
local looper = mqtt.Client(id .. "_looper", 60, "", "", 1)
local sender = mqtt.Client(id .. "_sender", 60, "", "", 1)
local sent, stopped = 0, false
local watchdog = tmr.create()

-- Nobody subscribes to the loop's topic: the broker never pushes back on it.
local function again(c)
  if stopped then return end
  sent = sent + 1
  if sent == 100 then sender:publish(id .. "/in", "hello", 0, 0) end
  c:publish(id .. "/loop", tostring(sent), 0, 0, again)
end

looper:on("message", function(c, topic, data)
  stopped = true
  watchdog:unregister()
  print("message while publishing:", topic == id .. "/in", data)
  c:close()
  sender:close()
end)

sender:connect("broker.local", 1883, function()
  looper:connect("broker.local", 1883, function(c)
    c:subscribe(id .. "/in", 0, function(c)
      print("subscribed")
      again(c)
    end)
  end)
end)

watchdog:alarm(10000, tmr.ALARM_SINGLE, function()
  print("starved: no message in 10 s")
  os.exit(1)
end)
