-- scenario: an error at the top level prints "lua: " and the traceback (2.2), status 1
-- status: 1
print("before")
error("boom")
