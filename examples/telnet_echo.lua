-- A telnet-style console server: each line a client types comes back with a
-- prompt. (A device console would feed it to node.input; the host listens on
-- 127.0.0.1 only unless started with --expose, because on a PC such a console
-- would be a shell for everyone on the network.) Port 23 is privileged: the host
-- maps it to a free port and says which on stderr. Try it with:
--   nodemcu-host examples/telnet_echo.lua     then: nc 127.0.0.1 <mapped port>
-- test-args: --remap *:23=127.0.0.1:{freeport}
-- test-ready: console on port 23
-- test-client: tcp_client.py {freeport} hello quit
-- test-client-expect: NodeMCU console
-- test-expect: client gone
local srv = net.createServer(net.TCP, 180)
srv:listen(23, function(conn)
  conn:on("receive", function(c, line)
    if line:match("^quit") then
      c:send("bye\n")
      c:close()  -- what was sent still goes out first; no disconnection callback follows
      print("client gone")
      srv:close()  -- a device would keep serving; the example ends here
    else
      c:send("echo: " .. line .. "\n> ")
    end
  end)
  conn:on("disconnection", function(c, err) print("client gone", err); srv:close() end)
  conn:send("NodeMCU console\n> ")
end)
print("console on port 23")
