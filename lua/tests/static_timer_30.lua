-- scenario: 3.0 has no static timer API
-- args: --firmware 3.0
-- status: 1
tmr.alarm(0, 1000, 1, function() end)
