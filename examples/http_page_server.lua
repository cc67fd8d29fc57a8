-- A web page on port 80, as device scripts serve a status page. Port 80 needs root
-- on a PC: the host maps it to a free port and prints the mapping on stderr.
--   nodemcu-host examples/http_page_server.lua     then open the printed address
-- test-args: --remap *:80=127.0.0.1:{freeport}
-- test-ready: serving on port 80
-- test-client: http_get.py {freeport} /
-- test-client-expect: 200
-- test-client-expect: Hello from NodeMCU
-- test-expect: served 1 page
local served = 0
local srv = net.createServer(net.TCP, 30)
srv:listen(80, function(conn)
  conn:on("receive", function(c, request)
    local body = "<html><body><h1>Hello from NodeMCU</h1><p>uptime " .. tmr.now() // 1000000 .. " s</p></body></html>"
    c:send("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: " .. #body .. "\r\n\r\n" .. body,
      function(s)
        s:close()
        served = served + 1
        print("served " .. served .. " page")
        srv:close()  -- a device would keep serving; the example ends here
      end)
  end)
end)
print("serving on port 80")
