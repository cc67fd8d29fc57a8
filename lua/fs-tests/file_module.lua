-- scenario: the file module (spec §5.2, more-modules §2) over a fresh --fs folder:
-- basic model and file objects, reads/seeks, listing, sandbox refusals, limits, and
-- persistence across node.restart(). Run by FileModuleTests with a temp folder.
local function try(label, f)
  local r = table.pack(pcall(f))
  print(label, table.unpack(r, 1, r.n))
end
local function sorted(t)
  local keys = {}
  for k, v in pairs(t) do keys[#keys + 1] = k .. "=" .. tostring(v) end
  table.sort(keys)
  return table.concat(keys, ",")
end
local _, reason = node.bootreason()
if reason == 4 then
  -- second boot: what the first one wrote is still there
  print("after restart", file.exists("persist.txt"), sorted(file.list()))
  local fd = file.open("persist.txt")
  print("persisted", fd:read())
  fd:close()
  file.format()
  print("after format", sorted(file.list()), file.fsinfo())
  return
end

print("fresh", sorted(file.list()), file.fsinfo())
print("fscfg", file.fscfg())
print("open missing", file.open("nope.txt"), file.open("nope.txt", "r"))
try("no current", function() return file.read() end)
print("close none", file.close())

-- basic model
print("open w", type(file.open("a.txt", "w")))
print("write", file.write("hello\n"), file.writeline("world"), file.write(42))
print("flush", file.flush())
file.close()
try("after close", function() return file.write("x") end)
print("open r", type(file.open("a.txt")))
print("read", file.read(3), file.read("\n"), file.readline(), file.readline())
print("seek", file.seek("set", 1), file.read(4), file.seek(), file.seek("end"), file.seek("cur", -3), file.read())
print("seek neg", file.seek("set", -5))
try("seek bad", function() return file.seek("middle") end)
try("read range", function() return file.read("ab") end)
print("read n<=0", file.seek("set"), file.read(0))
try("write number-like", function() return file.write({}) end)
file.close()

-- file objects
local fd = file.open("b.txt", "w+")
print("fd", type(fd), fd:write("abc"), fd:seek("set"), fd:read(), fd:read())
print("fd as arg", file.seek(fd, "set", 1), file.read(fd, 1))
fd:close()
try("fd closed", function() return fd:read() end)
try("fd bad self", function() return fd.read({}) end)
local ap = file.open("b.txt", "a+")
print("append", ap:write("def"), ap:seek("set"), ap:read())
ap:close()
print("mode x", type(file.open("b.txt", "x")), file.write("no"), file.read())
file.close()

-- the 4-open-files limit
local handles = {}
for i = 1, 5 do handles[i] = file.open("b.txt") end
print("limit", type(handles[4]), handles[5])
for i = 1, 4 do handles[i]:close() end

-- whole files
print("exists", file.exists("a.txt"), file.exists("zzz"))
print("list", sorted(file.list()), sorted(file.list("^a")), sorted(file.list("%.txt$")))
try("list bad pattern", function() return file.list("%") end)
local st = file.stat("a.txt")
print("stat", st.name, st.size, st.is_dir, st.is_rdonly, st.is_hidden, st.is_sys, st.is_arch,
  st.time.year, st.time.mon, st.time.day, st.time.hour, st.time.min, st.time.sec)
print("stat missing", file.stat("zzz"))
print("rename", file.rename("a.txt", "c.txt"), file.rename("c.txt", "b.txt"), file.rename("zzz", "y"))
print("after rename", sorted(file.list()))
file.remove("c.txt")
file.remove("zzz")
print("after remove", sorted(file.list()))
print("flat slash", type(file.open("dir/x", "w")), file.write("s"), file.close(), file.exists("dir/x"),
  file.list()["dir/x"])
print("/FLASH/", file.exists("/FLASH/b.txt"), type(file.open("/FLASH/new.txt", "w")))
file.close()
if file.getcontents then
  print("putcontents", file.putcontents("p.txt", "xyz\0bin"), #file.getcontents("p.txt"), file.getcontents("nope"))
end

-- names and the sandbox
local long = string.rep("n", 32)
try("long open", function() return file.open(long, "w") end)
try("long exists", function() return file.exists(long) end)
try("long rename", function() return file.rename("b.txt", long) end)
print("31 ok", type(file.open(string.rep("n", 31), "w")))
file.close()
print("escape", file.open("../escape.txt", "w"), file.open("/tmp/escape.txt", "w"), file.exists("../b.txt"),
  file.rename("b.txt", "../moved"), file.stat(".."), file.open("..", "w"), file.open("sub/../x", "w"))
print("outside link", file.open("outside", "r"), file.exists("outside"), file.list().outside)
try("name type", function() return file.open({}) end)

-- file.on
print("on", file.on("rtc", function() end), file.on())
try("on bad event", function() return file.on("x") end)
try("on bad fn", function() return file.on("rtc", 5) end)
print("fsinfo", file.fsinfo())

-- persistence: write, then a simulated reboot
local p = file.open("persist.txt", "w")
p:write("survives")
p:close()
node.restart()
