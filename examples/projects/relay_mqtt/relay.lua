-- relay.lua: the relay on a GPIO pin, its state kept in a file so that it
-- survives a restart or a power cut.

local M = {}

local PIN = 1              -- D1 (GPIO5) drives the relay board's input
local STATE_FILE = "relay.state"
local ACTIVE = gpio.HIGH   -- this relay board switches on a high level

local on = false

local function save()
  local f = file.open(STATE_FILE, "w")
  if f then
    f:write(on and "ON" or "OFF")
    f:close()
  else
    print("cannot save the relay state")
  end
end

local function apply()
  gpio.write(PIN, on and ACTIVE or (ACTIVE == gpio.HIGH and gpio.LOW or gpio.HIGH))
end

function M.restore()
  gpio.mode(PIN, gpio.OUTPUT)
  on = (file.getcontents(STATE_FILE) == "ON")
  apply()
end

function M.set(wanted)
  if wanted ~= on then
    on = wanted
    apply()
    save()
  end
end

function M.toggle() M.set(not on) end
function M.state() return on and "ON" or "OFF" end
function M.level() return gpio.read(PIN) end

return M
