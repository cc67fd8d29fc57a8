-- scenario: mqtt API without a broker: constants, argument errors, not-connected rules, pending-connect rules, DNS and TCP failures, connect inside connfail(-3)
-- firmware: 2.2 3.0
-- args: --remap refused.local=127.0.0.1:{noport}
local function try(label, f)
  local r = table.pack(pcall(f))
  if r[1] then print(label, "ok", r.n - 1, table.unpack(r, 2, r.n)) else print(label, "error", r[2]) end
end

for _, k in ipairs({"CONN_FAIL_SERVER_NOT_FOUND", "CONN_FAIL_NOT_A_CONNACK_MSG", "CONN_FAIL_DNS",
    "CONN_FAIL_TIMEOUT_RECEIVING", "CONN_FAIL_TIMEOUT_SENDING", "CONNACK_ACCEPTED", "CONNACK_REFUSED_PROTOCOL_VER",
    "CONNACK_REFUSED_ID_REJECTED", "CONNACK_REFUSED_SERVER_UNAVAILABLE", "CONNACK_REFUSED_BAD_USER_OR_PASS",
    "CONNACK_REFUSED_NOT_AUTHORIZED"}) do
  print(k, mqtt[k], math.type(mqtt[k]))
end

local m = mqtt.Client("mqtt_api", 30, "", "", 1)
print(type(m), tostring(m):match("^userdata: 0x%x+$") ~= nil, getmetatable(m).__name)
try("Client(table)", function() return type(mqtt.Client({})) end)

-- m:lwt
try("lwt()", function() return m:lwt() end)
try("lwt(t)", function() return m:lwt("t") end)
try("lwt(t, table)", function() return m:lwt("t", {}) end)
try("lwt(t, m)", function() return m:lwt("t", "m") end)
try("lwt(1, 2, 1, 0)", function() return m:lwt(1, 2, 1, 0) end)
try("lwt(t, m, 0, false)", function() return m:lwt("t", "m", 0, false) end)
try("lwt(t, m, 0, true)", function() return m:lwt("t", "m", 0, true) end)
for i = 1, 3 do m:lwt("t", "m", 0, i) m:lwt("t", "m", 0, 0, "x") end -- one warning per call site

-- m:on
local f = function() end
try("on()", function() return m:on() end)
try("on(connect)", function() return m:on("connect") end)
try("on(connect, nil)", function() return m:on("connect", nil) end)
try("on(table, f)", function() return m:on({}, f) end)
try("on(bogus, f)", function() return m:on("bogus", f) end)
for _, event in ipairs({"connect", "offline", "message", "connfail", "overflow", "puback", "suback", "unsuback"}) do
  try("on(" .. event .. ")", function() return m:on(event, f) end)
end

-- bad self
local fake = {}
for name, fn in pairs(getmetatable(m).__index) do fake[name] = fn end
try("bad self publish", function() return fake:publish("t", "x", 0, 0) end)
try("bad self connect", function() return fake:connect("h") end)
try("bad self close", function() return fake:close() end)
try("bad self on", function() return fake:on("connect", f) end)
try("bad self lwt", function() return fake:lwt("t", "m") end)
try("bad self subscribe", function() return fake:subscribe("t", 0) end)
try("bad self unsubscribe", function() return fake:unsubscribe("t") end)

-- never connected: the connection check comes before the arguments
try("publish idle", function() return m:publish() end)
try("subscribe idle", function() return m:subscribe("t", 0) end)
try("unsubscribe idle", function() return m:unsubscribe({}) end)
try("close idle", function() return m:close() end)

-- connect argument errors
try("connect()", function() return m:connect() end)
try("connect(table)", function() return m:connect({}) end)

-- a pending DNS lookup: not connected (error in both), close cancels nothing
local step = 0
local function connected() print("connected (never)") end
local function failed(c, reason)
  step = step + 1
  print("connfail", step, c == m, reason)
  if reason == mqtt.CONN_FAIL_DNS then
    -- the device corrupts this attempt; the host lets it proceed (with a warning)
    try("connect in connfail(-3)", function() return c:connect("refused.local", connected, failed) end)
  end
end
m:on("offline", function() print("offline (never: TCP was never up)") end)
try("connect dns", function() return m:connect("no-such-host.invalid", connected, failed) end)
try("connect pending again", function() return m:connect("no-such-host.invalid", connected, failed) end)
try("publish pending", function() return m:publish("t", "x", 0, 0) end)
try("subscribe pending", function() return m:subscribe("t", 0) end)
try("close pending", function() return m:close() end)
print("end of main chunk")
