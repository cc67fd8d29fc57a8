-- scenario: an error at the top level prints the message and traceback (3.0), status 1
-- args: --firmware 3.0
-- status: 1
local function check() error("boom") end
check()
