-- scenario: 2.2's static timers receive their id; tmr.stop/unregister by id
tmr.alarm(0, 20, tmr.ALARM_AUTO, function(id)
  print("tick", id)
  tmr.unregister(id)
  print("state", tmr.state(0))
end)
print(pcall(tmr.alarm, 7, 20, 1, print))
