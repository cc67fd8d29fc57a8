-- The scenario for telemetry.lua (README, "Porting tests"): the first heartbeats reach
-- the broker, the broker connection is dropped after the second, the script notices,
-- reconnects 5 s later and the heartbeats go on. In seconds of wall time:
--   nodemcu-host --virtual-time --remap broker.local=127.0.0.1:1883 \
--       --scenario telemetry_scenario.lua telemetry.lua
broker("broker.local:1883")  -- as the device script names it; --remap applies

local PERIOD = 10 * 60 * 1000

expect_publish("demo/heartbeat", '{"n":1,.*', PERIOD + 5000, function()
  expect_publish("demo/heartbeat", '{"n":2,.*', PERIOD + 5000, function()
    drop("broker.local:1883")
    expect_console("^offline$", 5000, function()
      expect_console("^connected$", 10000, function()
        expect_publish("demo/heartbeat", '{"n":3,.*', PERIOD + 5000, function()
          done("telemetry scenario passed")
        end)
      end)
    end)
  end)
end)
