-- http.get against a local server: here a tiny one made with net in the same script
-- (any http:// URL works the same, through --remap where needed).
-- test-expect: status 200
-- test-expect: body: hello from the local server
local srv = net.createServer()
srv:listen(0, function(conn)
  conn:on("receive", function(c)
    local body = "hello from the local server"
    c:send("HTTP/1.1 200 OK\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body,
      function(s) s:close() end)
  end)
end)
local port = srv:getaddr()
http.get("http://127.0.0.1:" .. port .. "/", nil, function(code, body, headers)
  print("status " .. code)
  print("body: " .. tostring(body))
  srv:close()
end)
