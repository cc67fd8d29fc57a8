-- scenario: the dht module (more-modules §4): sensors from the board file decoded per
-- function and profile, timeouts without a sensor, the pin check
-- args: --board {dir}/boards/dht.board
-- firmware: 2.2 3.0
local function try(label, f)
  local ok, err = pcall(f)
  print(label, ok, err)
end
print("constants", dht.OK, dht.ERROR_CHECKSUM, dht.ERROR_TIMEOUT)
print("none", dht.read(1))
print("dht22 read", dht.read(2))
print("dht22 readxx", dht.readxx(2))
print("dht22 read11", dht.read11(2))
print("dht11 read", dht.read(3))
print("dht11 read11", dht.read11(3))
print("dht11 readxx", dht.readxx(3))
print("raw bad sum", dht.read(4))
print("dht22 25.6", dht.read(5))
print("read12", dht.read12 and dht.read12(3))
try("read(0)", function() return dht.read(0) end)
try("read(13)", function() return dht.read(13) end)
try("read()", function() return dht.read() end)
