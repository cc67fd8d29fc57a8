-- console.lua: a Lua console over TCP port 23, one client at a time. What the
-- client types goes to the interpreter (node.input); everything the interpreter
-- and the scripts print goes back to the client (node.output), queued so that
-- one send is in flight at a time.

local PORT = 23
local IDLE_TIMEOUT = 300  -- seconds

local server = net.createServer(net.TCP, IDLE_TIMEOUT)

server:listen(PORT, function(socket)
  local queue = {}
  local sending = false

  local function sendNext(s)
    if #queue > 0 then
      sending = true
      s:send(table.remove(queue, 1))
    else
      sending = false
    end
  end

  local function output(text)
    -- coalesce small writes: print() writes the text and the newline separately
    if #queue > 0 and #queue[#queue] + #text < 1024 then
      queue[#queue] = queue[#queue] .. text
    else
      queue[#queue + 1] = text
    end
    if not sending then sendNext(socket) end
  end

  node.output(output, 0)   -- 0: not on the serial port as well
  socket:on("receive", function(s, line) node.input(line) end)
  socket:on("sent", sendNext)
  socket:on("disconnection", function()
    node.output(nil)
    print("console client left")
  end)
  print("NodeMCU " .. table.concat({node.info()}, ".", 1, 3) .. " console, chip " .. node.chipid())
end)

print("console listening on port " .. PORT)
