-- payload.lua: the message a heartbeat carries (a module, so it can be tested alone).
local M = {}

-- Lua 5.1 on the device: integers print without ".0"; keep to %d for counters.
function M.heartbeat(count, uptime, heap)
  return string.format('{"n":%d,"uptime":%d,"heap":%d}', count, uptime, heap)
end

return M
