-- scenario: the bit module (spec §5.6, more-modules §15): signed 32-bit results,
-- arguments reduced to their low 32 bits, number-like strings, the error texts
-- firmware: 2.2 3.0
local function show(label, ...) print(label, ...) end
local function try(label, f)
  local ok, err = pcall(f)
  print(label, ok, err)
end

show("bnot", bit.bnot(0), bit.bnot(-1), bit.bnot(0x7FFFFFFF))
show("band", bit.band(0xFF, 0x0F), bit.band(0xF0F0, 0xFF00, 0x3000), bit.band(7))
show("bor", bit.bor(1, 2, 4, 8), bit.bor(0x80000000, 0))
show("bxor", bit.bxor(0xFF, 0x0F), bit.bxor(5, 3, 1))
show("lshift", bit.lshift(1, 31), bit.lshift(1, 4), bit.lshift(0xFFFFFFFF, 4))
show("rshift", bit.rshift(-1, 28), bit.rshift(0x80000000, 31), bit.rshift(256, 4))
show("arshift", bit.arshift(-256, 4), bit.arshift(0x80000000, 31), bit.arshift(256, 4))
show("bit", bit.bit(0), bit.bit(7), bit.bit(31))
show("set", bit.set(0, 0, 2, 31), bit.set(1))
show("clear", bit.clear(0xFF, 0, 7), bit.clear(-1, 31))
show("isset", bit.isset(5, 0), bit.isset(5, 1), bit.isset(-1, 31))
show("isclear", bit.isclear(5, 0), bit.isclear(5, 1))
-- 2^32 is 0, 0xFFFFFFFF is -1, floats truncate, number-like strings count.
show("reduce", bit.band(2^32 + 5, -1), bit.bor(0xFFFFFFFF), bit.bor(7.9), bit.bor("12"), bit.bor("0x10"))
show("types", math.type(bit.bnot(0)), math.type(bit.bor(1.5)))

try("band()", function() local r = bit.band() end)
try("lshift(1)", function() local r = bit.lshift(1) end)
try("bnot('x')", function() local r = bit.bnot("x") end)
try("bor(1, {})", function() local r = bit.bor(1, {}) end)
try("set(1, nil)", function() local r = bit.set(1, nil) end)
try("isset(true, 1)", function() local r = bit.isset(true, 1) end)
