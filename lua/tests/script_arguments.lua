-- scenario: arg and ... as lua.c sets them
-- script-args: one --two 3
print(arg[0]:match("[^/]*$"), arg[1], arg[2], arg[3], #arg)
print(...)
