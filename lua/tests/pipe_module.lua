-- firmware: 3.0
-- pipe (more-modules §1.8): read sizes and delimiters, unread, nrec, #p, the reader task.
local function try(f, ...) print(pcall(f, ...)) end
local p = pipe.create()
print(tostring(p):match("^Pipe: 0x") ~= nil, #p, p:nrec(), p:read())
p:write("line one\nline two\nrest")
p:write("")
print(#p, p:nrec())
print(p:read())
print(p:read("\n+"))
print(p:read(2), p:read("t"))
p:unread("ab")
print(p:read(100), p:read())
try(p.read, p, 0)
try(p.read, p, "ab")
try(p.write, p, {})
try(pipe.create, 5)
try(pipe.create, print, 3)
p:write(("x"):rep(1500))
print(p:nrec(), #p:read(2000))
p:write("a,b,c")
local items = {}
for item in p:reader(",") do items[#items + 1] = "[" .. item .. "]" end
print(table.concat(items))
local q = pipe.create(function(pp)
  print("reader", pp:read("\n+"))
  return nil
end, 2)
q:write("first\n")
q:write("second\n")
print("written")
local n = 0
local r = pipe.create(function(pp)
  n = n + 1
  print("chunk", n, pp:read(3))
  if n == 1 then return true end
  return false
end)
r:write("abcdefghi")
local e = pipe.create(function() error("reader failed") end)
node.setonerror(function(t) print("onerror:", t:match("^[^\n]*")) end)
e:write("x")
