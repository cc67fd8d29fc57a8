-- How `require` finds modules in the flash file system, as on the device: the
-- firmware's LUA_PATH_DEFAULT "?.lc;?.lua" in both profiles, so compiled modules win
-- and chunk names carry no directory ("@mod.lua"; NTest cuts error texts at the last
-- "/" and relies on this). See docs/NTEST.md.
print("package.path", package.path)

local function put(name, text)
  local f = file.open(name, "w")
  f:write(text)
  f:close()
end

put("where.lua", "return debug.getinfo(1, 'S').source")
print("chunk name", require("where"))

put("broken.lua", "\nerror('raised by the module')")
local ok, err = pcall(require, "broken")
print("error text", ok, (err:match("^[^\n]*")))

put("choice.lua", "return 'from choice.lua'")
put("choice.lc", string.dump(load("return 'from choice.lc'", "=choice")))
print("both present", require("choice"))

file.remove("where.lua")
file.remove("broken.lua")
file.remove("choice.lua")
file.remove("choice.lc")
