-- firmware: 3.0
-- The file behaviours the firmware's own NTest file suite (tests/NTest_file.lua in
-- nodemcu-firmware) checks, in our own tests: existence, sizes, whole-file and
-- block-wise reads, listing with Lua patterns, open modes on missing and existing
-- files, the position after an empty write, remove, rename and stat. See docs/NTEST.md.

local failures = 0
local function test(name, body)
  print("test " .. name)
  local ok, err = pcall(body)
  if not ok then failures = failures + 1; print("  error " .. tostring(err)) end
end
local function check(cond, label)
  if not cond then failures = failures + 1 end
  print((cond and "  ok   " or "  FAIL ") .. label)
end

local names = { "sample", "sample.bak", "note_1#", "cfgDATA7", "blocks" }
local function clean()
  for _, n in ipairs(names) do file.remove(n) end
end

-- n chunks of 128 bytes, written 128 bytes at a time.
local function chunks(name, n)
  local piece = ("0123456789abcdef"):rep(8)
  local f = file.open(name, "w")
  for _ = 1, n do f:write(piece) end
  f:close()
end

test("exists", function()
  clean()
  check(file.exists("sample") == false, "a missing file does not exist")
  file.putcontents("sample", "hello")
  check(file.exists("sample") == true, "a written file exists")
end)

test("fscfg and fsinfo", function()
  local address, size = file.fscfg()
  check(type(address) == "number" and type(size) == "number" and size > 0, "fscfg: flash address and size")
  local remaining, used, total = file.fsinfo()
  check(remaining and used and total, "fsinfo: three numbers")
  check(remaining + used == total, "remaining + used = total")
end)

test("getcontents", function()
  clean()
  local bytes = "before\0after\255"
  file.putcontents("sample", bytes)
  check(file.getcontents("sample") == bytes, "round trip with a NUL and a high byte")
  check(file.getcontents("sample.bak") == nil, "nil for a missing file")
  local f = file.open("sample", "w")
  for _ = 1, 50 do f:write("thirty-four bytes of sample text..") end
  f:close()
  check(#file.getcontents("sample") == 1700, "a 1700-byte file whole")
end)

test("read in default blocks", function()
  local f = file.open("sample", "r")
  local first, second, third = f:read(), f:read(), f:read()
  f:close()
  check(#first == 1024, "first block: 1024 bytes")
  check(#second == 676, "second block: the other 676")
  check(third == nil, "then nil")
end)

test("blocks around 1 KiB", function()
  for _, n in ipairs({ 7, 8, 9 }) do
    clean()
    chunks("blocks", n)
    local f = file.open("blocks", "r")
    local a, b = f:read(), f:read()
    f:close()
    local want = n * 128
    check(a ~= nil and #a == math.min(want, 1024), n .. "*128: first read " .. (a and #a or "nil"))
    if want > 1024 then
      check(b ~= nil and #b == want - 1024, n .. "*128: second read " .. (b and #b or "nil"))
    else
      check(b == nil, n .. "*128: second read nil")
    end
  end
end)

test("list with patterns", function()
  clean()
  file.putcontents("note_1#", "1234567")
  file.putcontents("cfgDATA7", "12")
  local function keys(t)
    local out = {}
    for k, v in pairs(t) do out[#out + 1] = k .. "=" .. v end
    table.sort(out)
    return table.concat(out, " ")
  end
  check(keys(file.list("note_%d")) == "note_1#=7", "an unanchored pattern: name = size")
  check(keys(file.list("^%l+%u+%d$")) == "cfgDATA7=2", "an anchored pattern with classes")
  local all = file.list()
  check(all["note_1#"] == 7 and all["cfgDATA7"] == 2, "no pattern: every file")
end)

test("open a missing file", function()
  for _, mode in ipairs({ "r", "w", "a", "r+", "w+", "a+" }) do
    clean()
    local f = file.open("sample", mode)
    print(("  %-2s %s"):format(mode, f and "opened" or "nil"))
    if f then f:close() end
  end
  clean()
end)

test("position after an empty write", function()
  for _, mode in ipairs({ "r", "w", "a", "r+", "w+", "a+" }) do
    file.putcontents("sample", "eleven char")
    check(file.open("sample", mode) ~= nil, mode .. " opens")
    local wrote = file.write("")
    print(("  %-2s write('') -> %s, seek() -> %s"):format(mode, tostring(wrote), tostring(file.seek())))
    file.close()
  end
end)

test("remove", function()
  file.putcontents("sample", "x")
  check(select("#", file.remove("sample")) == 0, "returns nothing for a file")
  check(select("#", file.remove("sample")) == 0, "and nothing for a missing one")
  check(not file.exists("sample"), "gone")
end)

test("rename", function()
  clean()
  file.putcontents("sample", "content")
  check(file.rename("sample", "sample.bak") == true, "to a free name: true")
  check(not file.exists("sample") and file.exists("sample.bak"), "moved")
  check(file.rename("sample", "other") == false, "a missing file: false")
  file.putcontents("sample", "new")
  check(file.rename("sample", "sample.bak") == false, "onto an existing name: false")
  check(file.getcontents("sample") == "new" and file.getcontents("sample.bak") == "content", "both untouched")
end)

test("stat", function()
  clean()
  file.putcontents("sample", "12345678")
  local s = file.stat("sample")
  check(s.size == 8 and s.name == "sample", "size and name")
  local t = s.time
  check(t.year == 1970 and t.mon == 1 and t.day == 1 and t.hour == 0 and t.min == 0 and t.sec == 0,
    "time: the SPIFFS epoch")
  check(not (s.is_dir or s.is_rdonly or s.is_hidden or s.is_sys or s.is_arch), "no attribute set")
  check(file.stat("sample.bak") == nil, "nil for a missing file")
  clean()
end)

print("failures: " .. failures)
