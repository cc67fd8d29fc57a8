local N = require("MiniNTest")("math")
N.test("adds", function(ok) ok(1 + 1 == 2, "1+1") end)
N.test("timer", function(ok) ok(tmr.now() >= 0, "tmr.now") end)
N.finish()
