-- payload_test.lua: run with `nodemcu-host test examples/porting`. A plain test file:
-- any Lua error (a failed assert) fails it.
local payload = require("payload")

local text = payload.heartbeat(3, 1800, 40000)
assert(text == '{"n":3,"uptime":1800,"heap":40000}', "unexpected payload: " .. text)

-- The device's heap is small: a payload must stay well under 100 bytes.
assert(#payload.heartbeat(144, 86400, 44000) < 100)
print("payload ok")
