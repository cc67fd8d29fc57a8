-- scenario: under --heap the MQTT queue lives in the device heap: a burst of QoS 1
-- publishes (one in flight, the rest queued) is refused (publish returns false) once
-- the queue no longer fits, as on the device; the queue drains and the run ends
-- (run by PortingTests.testTheMQTTQueueCountsAgainstTheHeap, with and without --heap)
local m = mqtt.Client("heap_mqtt_queue", 30)
local payload = string.rep("x", 500)
m:connect("broker.local", 1883, 0, function(c)
  local before = node.heap()
  local accepted = 0
  for i = 1, 200 do
    if c:publish("heap_mqtt_queue/t", payload, 1, 0) then accepted = accepted + 1 end
  end
  print("some refused", accepted > 0 and accepted < 200)
  print("heap used by the queue", node.heap() < before)
  tmr.create():alarm(50, tmr.ALARM_AUTO, function(t)
    if node.heap() >= before then
      t:unregister()
      print("queue drained")
      c:close()
    end
  end)
end, function(_, reason) print("connfail", reason) end)
