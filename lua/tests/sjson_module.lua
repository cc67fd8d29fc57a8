-- scenario: the sjson module (spec §5.3): encode rules, number formats per profile,
-- decode with null/metatable options, streaming in 1-byte chunks, error texts, depth
-- firmware: 2.2 3.0
local function try(label, f, ...)
  local r = table.pack(pcall(f, ...))
  print(label, table.unpack(r, 1, r.n))
end
-- A deterministic dump: keys sorted, nested tables inline.
local function dump(v)
  if type(v) ~= "table" then
    if type(v) == "string" then return string.format("%q", v) end
    if type(v) == "userdata" then return "NULL" end
    return tostring(v)
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. dump(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- encode
print("empty", sjson.encode({}))
print("array", sjson.encode({1, 2, 3, "x", true, false}))
print("holes", sjson.encode({[1] = 1, [3] = 3}))
print("object", sjson.encode({a = 1}))
print("nested", sjson.encode({a = {b = {1, {c = "d"}}}}))
print("numkeys", sjson.encode({[1] = 1, [-1] = 2}) == '{"1":1,"-1":2}' or sjson.encode({[1] = 1, [-1] = 2}) == '{"-1":2,"1":1}')
print("escapes", sjson.encode({"q\"b\\s/\n\t\r\b\f\1\31"}))
print("bytes", sjson.encode({"\200\255"}) == '["\200\255"]')
print("numbers", sjson.encode({22.3, 0.1, 3, -7, 1e300, 2^53}))
print("inf", sjson.encode({1/0, -1/0}))
print("function", sjson.encode({function() return function() return {1} end end}))
print("null opt", sjson.encode({"x", "y", "null"}, {null = "x"}))
print("light null", sjson.encode({sjson.decode("[null]")[1]}))
print("sjson.NULL", sjson.NULL, sjson.NULL == sjson.decode("[null]")[1])
try("encode string", function() return sjson.encode("x") end)
try("encode none", function() return sjson.encode() end)
try("encode userdata", sjson.encode, {io.stdout})
try("encode coroutine", sjson.encode, {a = coroutine.create(print)})
try("encode fn error", sjson.encode, {function() error("boom", 0) end})
try("encode table key", sjson.encode, {[{}] = 1})
local deep = {}
local t = deep
for _ = 1, 19 do t[1] = {}; t = t[1] end
print("depth 20", sjson.encode(deep))
t[1] = {}
try("depth 21", sjson.encode, deep)
local cyc = {}
cyc[1] = cyc
try("cycle", sjson.encode, cyc)
try("depth opt", sjson.encode, deep, {depth = 100})

-- encoder streaming
local enc = sjson.encoder({1, 2, {a = "bc"}})
local parts = {}
while true do
  local chunk = enc:read(1)
  if not chunk then break end
  parts[#parts + 1] = chunk
end
print("encoder 1", #parts, table.concat(parts))
local enc2 = sjson.encoder({"abc"})
print("encoder default", enc2:read(), enc2:read())
print("encoder 0", sjson.encoder({5}):read(0))
try("encoder bad self", function() return enc.read({}) end)

-- decode
print("decode", dump(sjson.decode('{"a":1,"b":[1,2.5,"x",true,false,null],"c":{"d":-0.5e1}}')))
print("types", math.type(sjson.decode("[1]")[1]), math.type(sjson.decode("[1.5]")[1]))
print("unicode", sjson.decode('["\\u00e9\\u20ac\\u0041\\ud83d\\ude00"]')[1])
print("escapes", dump(sjson.decode('["\\"\\\\\\/\\b\\f\\n\\r\\t"]')))
print("raw utf8", sjson.decode('["é€"]')[1] == "é€")
print("null", type(sjson.decode("[null]")[1]), sjson.decode("[null]")[1] == sjson.NULL)
print("null opt", dump(sjson.decode('{"a":null,"b":1}', {null = "NIL"})))
print("null absent", dump(sjson.decode('{"a":null,"b":1}', {})))
local mt = {__index = function() return "dflt" end}
local withmt = sjson.decode('{"a":{"b":1}}', {metatable = mt})
print("metatable", getmetatable(withmt) == mt, getmetatable(withmt.a) == mt, withmt.zzz)
print("round trip", dump(sjson.decode(sjson.encode({a = {1, 2, {b = "c\n"}}, d = "é"}))))
print("whitespace", dump(sjson.decode(' \t\r\n[ 1 , 2 ]\n ')))
print("trailing", dump(sjson.decode('[1] [2]')), dump(sjson.decode('{"a":1} xyz')))
print("quirk", dump(sjson.decode('["a" "b"]')))
try("decode number", sjson.decode, 5)
try("decode none", function() return sjson.decode() end)
try("decode table", function() return sjson.decode({}) end)
for _, bad in ipairs({'[1,]', '{"a":1,}', '[1 2]', '{"a" 1}', '{"a"}', '{"a":}', '[1}', '{1:2}',
    '"x"', '[tru]', '[truex]', '[01]', '[1.]', '[-]', '[1e]', '[1.2.3]', '[,1]', '{"a":1 "b":2}',
    '["\\x"]', '["a\1"]', '[nul]', ']', '\\', '[{]', '{[1]}', '[1]]'}) do
  local ok, r = pcall(sjson.decode, bad)
  print("bad " .. bad, ok, ok and dump(r) or r)
end
for _, short in ipairs({'', '[', '{"a":', '[1', '5', '"abc', '[1,2', '  '}) do
  try("short " .. short, sjson.decode, short)
end
local nest = string.rep("[", 19) .. string.rep("]", 19)
print("levels 19", #sjson.encode(sjson.decode(nest)))
try("levels 20", sjson.decode, string.rep("[", 20) .. string.rep("]", 20))
try("levels scalar", sjson.decode, string.rep("[", 19) .. "1" .. string.rep("]", 19))
try("levels huge", sjson.decode, string.rep("[", 100000))
try("levels opt", sjson.decode, string.rep("[", 20) .. string.rep("]", 20), {depth = 100})

-- decoder streaming, 1 byte at a time
local text = sjson.encode({a = {1, 2.25, "x\"y", {b = true}}, c = "\u{e9}"}) .. "  "
local dec = sjson.decoder()
local got
for i = 1, #text do
  local r = dec:write(text:sub(i, i))
  if r ~= nil and got == nil then got = i end
end
print("decoder", got, #text, dump(dec:result()))
print("decoder again", dump(dec:write("[9]")))
local dec2 = sjson.decoder({null = 0})
try("result early", dec2.result, dec2)
print("partial", dec2:write('{"n":nu'), dec2:write('ll,"m":"\\u00'), dump(dec2:write('41"}')))
print("decoder null opt", dump(dec2:result()))
local dec3 = sjson.decoder()
try("decoder error", dec3.write, dec3, "[1,]")
try("decoder after error", dec3.write, dec3, "[1]")
try("decoder write nil", function() return dec3:write() end)
try("decoder bad self", function() return dec3.write({}, "x") end)
print("cjson", cjson)
