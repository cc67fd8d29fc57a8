-- scenario: the Lua 5.1-era globals NodeMCU scripts rely on (spec 6.2)
print(unpack({1, 2, 3}))
print(loadstring("return 7")())
print(table.getn({1, 2, 3}), pcall(table.getn, 5))
print(pcall(table.setn, {}, 1))
print(table.maxn({1, 2, [10] = 3, x = 4}), table.maxn({}))
print(table.foreach({a = 1}, function(k, v) return k .. v end))
print(table.foreachi({"x", "y"}, function(i, v) if v == "y" then return i end end))
print(math.pow(2, 8), string.gfind == string.gmatch, math.type(gcinfo()))
local M = {}
local function inner() setfenv(1, M) answer = 42 end
inner()
print(M.answer, answer)
print(getfenv(0) == _G, getfenv(print) == _G)
package.loaded.mymod = nil
local function definemod()
  module("mymod", package.seeall)
  function hello() return "hello from " .. _NAME end
end
definemod()
print(mymod.hello(), type(print))
