-- scenario: a server and a client in one script on 127.0.0.1 (spec §4.2, §4.3):
-- accept order (listen callback, then the accepted socket's connection callback),
-- the 2920-byte send buffer (out of memory), one sent per send, receive, close
-- without a disconnection callback, remote close = disconnection(0), the errors
-- already connected / already listening / address in use, DNS inside and outside
-- the call; the process ends by itself once everything is closed
-- firmware: 2.2 3.0
local function try(label, f)
  local ok, err = pcall(f)
  print(label, ok, err)
end
local order, serverOrder = {}, {}
local function note(s) order[#order + 1] = s end
local function serverNote(s) serverOrder[#serverOrder + 1] = s end

local srv = net.createServer()
srv:listen(0, function(conn)
  serverNote("listen callback")
  conn:on("connection", function(c) serverNote("accepted connection") end)
  local total = 0
  conn:on("receive", function(c, data)
    total = total + #data
    if total == 2920 then
      print("server received", total)
      c:send("bye", function() print("server sent bye") end)
    end
  end)
  conn:on("disconnection", function(c, err)
    print("server disconnection", err)
    print("client:", table.concat(order, ", "))
    print("server:", table.concat(serverOrder, ", "))
    srv:close()
  end)
end)
local port = srv:getaddr()
print("listening", type(port), select(2, srv:getaddr()))
try("listen again", function() srv:listen(0, print) end)
try("address in use", function() net.createServer():listen(port, print) end)

local sock = net.createConnection()
sock:on("dns", function(s, ip) note("dns " .. tostring(ip)) end)
sock:on("connection", function(s)
  note("client connection")
  print("peer", s:getpeer() == port)
  try("connect again", function() s:connect(port, "127.0.0.1") end)
  local sent = 0
  s:send(string.rep("a", 2000), function() sent = sent + 1; print("sent", sent) end)
  s:send(string.rep("b", 920))
  try("overflow", function() s:send("c") end)
end)
sock:on("receive", function(s, data)
  print("client received", data)
  s:close()
  print("closed locally")
end)
sock:on("disconnection", function(s, err) print("client disconnection (not expected)", err) end)
sock:connect(port, "127.0.0.1")
note("after connect")

net.dns.resolve("127.0.0.1", function(sk, ip) print("resolve literal", sk, ip) end)
print("after resolve")
