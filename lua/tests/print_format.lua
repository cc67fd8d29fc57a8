-- scenario: print formats as the device's print does, with Lua 5.3 number formatting
print(1, "two", nil, true, 10 / 2, 1 / 3, 2^53, -0.0)
print()
print(("x"):rep(3), #arg, arg[0]:match("[^/]*$"))
