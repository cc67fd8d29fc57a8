-- console.lua: a Lua console over TCP port 23, one client at a time. What the
-- client types goes to the interpreter (node.input); everything the interpreter
-- and the scripts print goes back to the client (node.output), queued so that
-- one send is in flight at a time.

local PORT = 23
local IDLE_TIMEOUT = 300  -- seconds
local CHUNK = 1400        -- bytes per send: one TCP segment

-- 2.2 takes the type first; 3.0 only the timeout (its first argument would be it)
local server = pipe and net.createServer(IDLE_TIMEOUT) or net.createServer(net.TCP, IDLE_TIMEOUT)

server:listen(PORT, function(socket)
  local queue = {}
  local sending = false

  local sendNext
  sendNext = function(s)
    if #queue > 0 then
      sending = true
      s:send(table.remove(queue, 1))
    else
      sending = false
    end
  end

  if pipe then
    -- Firmware 3.0: node.output hands over the console's pipe; drain it in
    -- packet-sized pieces, the next one when the previous has been sent.
    local stdout
    sendNext = function(s)
      local piece = stdout and stdout:read(CHUNK)
      if piece and #piece > 0 then
        sending = true
        s:send(piece)
      else
        sending = false
      end
    end
    node.output(function(p)
      stdout = p
      if not sending then sendNext(socket) end
      return false   -- "sent" drains the rest
    end, 0)
  else
    -- Firmware 2.2: node.output calls the function once per write, with a string.
    node.output(function(text)
      -- Coalesce small writes (print() writes each piece and the newline
      -- separately), and cut long ones: a send must fit the 2920-byte TCP buffer.
      local last = queue[#queue]
      if last and #last + #text <= CHUNK then
        queue[#queue] = last .. text
      else
        for i = 1, #text, CHUNK do queue[#queue + 1] = text:sub(i, i + CHUNK - 1) end
      end
      if not sending then sendNext(socket) end
    end, 0)     -- 0: not on the serial port as well
  end
  socket:on("receive", function(s, line) node.input(line) end)
  socket:on("sent", sendNext)
  socket:on("disconnection", function()
    node.output(nil)
    print("console client left")
  end)
  local version
  if pipe then
    local sw = node.info("sw_version")
    version = sw.node_version_major .. "." .. sw.node_version_minor .. "." .. sw.node_version_revision
  else
    version = table.concat({node.info()}, ".", 1, 3)
  end
  print("NodeMCU " .. version .. " console, chip " .. node.chipid())
end)

print("console listening on port " .. PORT)
