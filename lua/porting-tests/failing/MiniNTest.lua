-- MiniNTest.lua: a tiny test helper that prints what the firmware's NTest prints
-- (its default output handler), so the runner's NTest parsing can be tested without
-- NTest itself. Synchronous tests only; call :finish() at the end.
return function(runname)
  local T = {}
  print("######## started " .. runname .. " tests")
  function T.test(name, fn)
    print("begin " .. name)
    local function ok(cond, msg)
      msg = msg or "assertion"
      if cond then
        print("  pass " .. name .. ": " .. msg)
      else
        print(" ==>  fail " .. name .. ": " .. msg)
        error("_*_TestAbort_*_")
      end
    end
    local good, err = pcall(fn, ok)
    if not good and not tostring(err):match("_%*_TestAbort_%*_") then
      print(" ==>  except " .. name .. ": " .. tostring(err))
    end
    print("end " .. name)
  end
  function T.finish()
    print("######## finished " .. runname .. " tests")
  end
  return T
end
