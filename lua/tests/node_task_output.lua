-- firmware: 2.2 3.0
-- node.task.post priority order, node.output capture (2.2: one call per write; 3.0:
-- a pipe drained by a reader task), node.input through the interpreter.
node.task.post(0, function(p) print("low", p) end)
node.task.post(function(p) print("med", p) end)
node.task.post(2, function(p) print("high", p) end)
tmr.create():alarm(50, tmr.ALARM_SINGLE, function()
  if pipe then
    node.output(function(p)
      local s = p:read(1400)
      uart.write(0, "[" .. (s or "nil") .. "]")
    end, 0)
  else
    node.output(function(s) uart.write(0, "[" .. s .. "]") end, 0)
  end
  print("x", 2)
  node.input("=1+1")
  node.input("\n")
  tmr.create():alarm(50, tmr.ALARM_SINGLE, function() node.output(nil) print("done") end)
end)
