-- firmware: 2.2 3.0
-- uart (more-modules §5): constants, setup/getconfig/alt/write returns and errors.
local function try(f, ...) print(pcall(f, ...)) end
print(uart.PARITY_NONE, uart.PARITY_EVEN, uart.PARITY_ODD, uart.STOPBITS_1, uart.STOPBITS_2, uart.STOPBITS_1_5, uart.DIR_RX, uart.DIR_TX, uart.setmode)
print(uart.getconfig(0))
print(uart.setup(0, 9600, 7, 1, 2), uart.getconfig(0))
print(uart.setup(1, 12345, 4, 7, 9, 0), uart.getconfig(1))
try(uart.setup, 2, 9600, 8, 0, 1)
try(uart.getconfig, -1)
try(uart.setup, 0, "fast", 8, 0, 1)
print(uart.alt(1), uart.alt(0))
uart.write(0, "A", 66, 67, "\n")
uart.write(1, "not printed")
try(uart.write, 0, 256)
try(uart.write, 0, "ok", true)
try(uart.write, 3, "x")
try(uart.on, "data", 256, print, 0)
try(uart.on, "data", "ab", print, 0)
try(uart.on, "foo", print)
try(uart.on, {}, print)
print(uart.on("data"))
if uart.fifodepth then
  print(uart.fifodepth(), uart.fifodepth(1, uart.DIR_TX))
  try(uart.fifodepth, 2)
  try(uart.fifodepth, 0, 2)
end
