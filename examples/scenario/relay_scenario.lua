-- The scenario for relay.lua (README, "Scenarios"): a button press, a command from the
-- broker, and a half-open broker link the script must notice and recover from.
--   nodemcu-host --remap 192.168.1.10=127.0.0.1:1883 --scenario relay_scenario.lua relay.lua
-- Exit status 0 when every step passed, 3 with a message naming the step otherwise.
broker("192.168.1.10:1883")  -- as the device script names it; --remap applies

local BUTTON, RELAY = 2, 1
local KEEPALIVE_MS = 2000

local function press()
  gpio(BUTTON, 0)
  after(50, function() gpio(BUTTON, 1) end)
end

-- 1. Once online, a button press switches the relay on and the state reaches the broker.
expect_console("^connected$", 3000, function()
  press()
  expect_gpio(RELAY, 1, 100)
  expect_publish("home/relay/state", "ON", 1000, function()
    -- 2. A command from the broker switches it off again.
    publish("home/relay/set", "OFF", 1)
    expect_gpio(RELAY, 0, 1000)
    expect_publish("home/relay/state", "OFF", 1000, function()
      -- 3. The link to the broker goes half-open: nothing passes, the socket stays
      -- open. The keepalive (PINGREQ after one period, no PINGRESP within the next)
      -- must take the client offline, and the script must reconnect. (Half a second
      -- later, so that the PUBACK of "OFF" is in: with a QoS 1 message unacknowledged
      -- the firmware sends no PINGREQ, and the client would hang, as on the device.)
      after(500, function()
        half_open("192.168.1.10:1883")
        -- 2.2 pings after keepalive + 1 s of send-idleness and gives up one period
        -- later (spec §2.9): about 2 × (keepalive + 1 s).
        expect_console("^offline$", 2 * (KEEPALIVE_MS + 1000) + 1000, function()
          expect_console("^connected$", 3000, function()
            press()
            expect_publish("home/relay/state", "ON", 1000, function()
              expect(#gpio_writes() >= 4, "the relay was written at least four times")
              done("relay scenario passed")
            end)
          end)
        end)
      end)
    end)
  end)
end)
