-- scenario: the adc module (more-modules §3): the board's reading, VDD33, init mode
-- args: --board {dir}/boards/adc.board
-- firmware: 2.2 3.0
local function try(label, f)
  local ok, err = pcall(f)
  print(label, ok, err)
end
print("constants", adc.INIT_ADC, adc.INIT_VDD33)
print("read", adc.read(0), math.type(adc.read(0)))
print("readvdd33", adc.readvdd33(), adc.readvdd33(1, 2))
try("read(1)", function() return adc.read(1) end)
try("read()", function() return adc.read() end)
print("force same", adc.force_init_mode(adc.INIT_ADC))
try("force 7", function() return adc.force_init_mode(7) end)
print("force vdd33", adc.force_init_mode(adc.INIT_VDD33))
print("still adc until restart", adc.read(0))
