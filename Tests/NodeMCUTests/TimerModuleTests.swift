import NodeMCU
import XCTest

final class TimerModuleTests: XCTestCase {
    func testSingleTimerFiresOnceUnregisteredFirstAndTheProcessThenEnds() {
        let h = RuntimeHarness(pinned: false, script: """
            t = tmr.create()
            t:alarm(50, tmr.ALARM_SINGLE, function(timer)
              print("fired", timer == t, t:state(), t:start())
            end)
            print(t:state())
            """)
        XCTAssertEqual(h.takeOutput(), "true\t0\n")
        h.advance(ms: 49)
        XCTAssertEqual(h.output, "")
        XCTAssertNil(h.exitStatus)
        h.advance(ms: 1)
        XCTAssertEqual(h.takeOutput(), "fired\ttrue\tnil\tfalse\n")
        h.loop.run()
        XCTAssertEqual(h.exitStatus, 0)
    }

    func testSemiTimerRestartsFromInsideItsCallback() {
        let h = RuntimeHarness(pinned: false, script: """
            n = 0
            tmr.create():alarm(10, tmr.ALARM_SEMI, function(t)
              n = n + 1
              print(n, t:state())
              if n < 3 then print(t:start()) end
            end)
            """)
        h.advance(ms: 10)
        h.advance(ms: 10)
        h.advance(ms: 10)
        XCTAssertEqual(h.takeOutput(), "1\tfalse\t2\ntrue\n2\tfalse\t2\ntrue\n3\tfalse\t2\n")
        h.advance(ms: 100)
        XCTAssertEqual(h.output, "")
        XCTAssertEqual(h.exitStatus, 0)
    }

    func testAutoTimerIsPeriodicUntilStopped() {
        let h = RuntimeHarness(script: """
            n = 0
            t = tmr.create()
            t:alarm(100, tmr.ALARM_AUTO, function(timer)
              n = n + 1
              if n == 3 then print(timer:stop(), timer:stop(), timer:state()) end
            end)
            """)
        h.advance(ms: 99)
        XCTAssertEqual(h.eval("n"), "0")
        h.advance(ms: 1)
        XCTAssertEqual(h.eval("n"), "1")
        h.advance(ms: 200)
        XCTAssertEqual(h.eval("n"), "3")
        XCTAssertEqual(h.takeOutput(), "true\tfalse\tfalse\t1\n")
        h.advance(ms: 1000)
        XCTAssertEqual(h.eval("n"), "3")
        // Stopped but registered: start() re-arms it.
        h.run("print(t:start(), t:start())")
        XCTAssertEqual(h.takeOutput(), "true\tfalse\n")
        h.advance(ms: 100)
        XCTAssertEqual(h.eval("n"), "4")
    }

    func testUnreferencedArmedTimerLivesAndIsCollectableAfterwards() {
        let h = RuntimeHarness(script: """
            weak = setmetatable({}, {__mode = "k"})
            local t = tmr.create()
            weak[t] = true
            t:alarm(10, tmr.ALARM_SINGLE, function() print("alive") end)
            t = nil
            collectgarbage() collectgarbage()
            """)
        XCTAssertEqual(h.eval("next(weak) ~= nil"), "true")
        h.advance(ms: 10)
        XCTAssertEqual(h.takeOutput(), "alive\n")
        h.run("collectgarbage() collectgarbage()")
        XCTAssertEqual(h.eval("next(weak) == nil"), "true")
    }

    func testRegisterAndIntervalErrorTexts() {
        let h = RuntimeHarness(script: "t = tmr.create()")
        XCTAssertEqual(h.error("t:register(0, 0, print)"), "init.lua:1: bad argument #1 to 'register' (Range: 1-6870947)")
        XCTAssertEqual(h.error("t:register(6870948, 0, print)"), "init.lua:1: bad argument #1 to 'register' (Range: 1-6870947)")
        XCTAssertEqual(h.error("t:register(10, 3, print)"), "init.lua:1: bad argument #2 to 'register' (Invalid mode)")
        XCTAssertEqual(h.error("t:register(10, 0, 'f')"), "init.lua:1: bad argument #3 to 'register' (Must be function)")
        XCTAssertEqual(h.error("t:register('x', 0, print)"), "init.lua:1: bad argument #1 to 'register' (number expected, got string)")
        // Both types are checked before the ranges.
        XCTAssertEqual(h.error("t:register(0, nil, print)"), "init.lua:1: bad argument #2 to 'register' (number expected, got nil)")
        XCTAssertEqual(h.error("t:alarm(0, 0, print)"), "init.lua:1: bad argument #1 to 'alarm' (Range: 1-6870947)")
        XCTAssertEqual(h.error("t:interval(0)"), "init.lua:1: bad argument #1 to 'interval' (Range: 1-6870947)")
        XCTAssertEqual(h.error("t.start({})"), "init.lua:1: bad argument #1 to 'start' (tmr.timer expected, got table)")
        XCTAssertEqual(h.error("local s = {start = t.start} s:start()"), "init.lua:1: calling 'start' on bad self (tmr.timer expected, got table)")
        // Number-like strings and floats are accepted and truncated.
        XCTAssertEqual(h.error("t:register('20', 1.9, print)"), "")
        XCTAssertEqual(h.eval("select(2, t:state())"), "1")
    }

    func testStateStopStartAndIntervalSemantics() {
        let h = RuntimeHarness(script: "t = tmr.create()")
        XCTAssertEqual(h.eval("t:state()"), "nil")
        XCTAssertEqual(h.eval("t:start()"), "false")
        XCTAssertEqual(h.eval("t:stop()"), "false")
        h.run("t:register(100, tmr.ALARM_SINGLE, function() print('single') end)")
        XCTAssertEqual(h.eval("t:state()"), "false")
        XCTAssertEqual(h.eval("t:start()"), "true")
        h.advance(ms: 50)
        // Running: the new interval re-arms from now.
        h.run("t:interval(100)")
        h.advance(ms: 99)
        XCTAssertEqual(h.output, "")
        h.advance(ms: 1)
        XCTAssertEqual(h.takeOutput(), "single\n")
        // A fired SINGLE timer is unregistered: interval is ignored, start is false.
        h.run("t:interval(10)")
        XCTAssertEqual(h.eval("t:start()"), "false")
        h.run("t:register(10, tmr.ALARM_AUTO, function() print('auto') end) t:unregister()")
        XCTAssertEqual(h.eval("t:state()"), "nil")
        XCTAssertEqual(h.eval("t:start()"), "false")
        h.advance(ms: 100)
        XCTAssertEqual(h.output, "")
    }

    func testStartWithRestartIsProfile30Only() {
        let h30 = RuntimeHarness(profile: .v3_0, script: "t = tmr.create() t:alarm(100, 0, function() print('x') end)")
        XCTAssertEqual(h30.eval("t:start()"), "false")
        h30.advance(ms: 60)
        XCTAssertEqual(h30.eval("t:start(true)"), "true")
        h30.advance(ms: 60)
        XCTAssertEqual(h30.output, "")
        h30.advance(ms: 40)
        XCTAssertEqual(h30.takeOutput(), "x\n")
        XCTAssertEqual(h30.error("t:start(1)"), "init.lua:1: bad argument #1 to 'start' (boolean expected)")

        // 2.2 ignores the argument.
        let h22 = RuntimeHarness(script: "t = tmr.create() t:alarm(100, 0, function() print('x') end)")
        XCTAssertEqual(h22.eval("t:start(true)"), "false")
        XCTAssertEqual(h22.error("t:start(1)"), "")
    }

    func testStaticTimersIn22() {
        let h = RuntimeHarness(script: """
            tmr.alarm(0, 100, 1, function(id) print("static", id, math.type(id)) if tmr.state(0) then tmr.stop(0) end end)
            print(tmr.start(0), tmr.state(0))
            """)
        XCTAssertEqual(h.takeOutput(), "false\ttrue\t1\n")
        h.advance(ms: 100)
        XCTAssertEqual(h.takeOutput(), "static\t0\tinteger\n")
        h.advance(ms: 500)
        XCTAssertEqual(h.output, "")
        XCTAssertEqual(h.error("tmr.alarm(7, 100, 0, print)"), "init.lua:1: bad argument #1 to 'alarm' (invalid timer index)")
        XCTAssertEqual(h.error("tmr.alarm('x', 100, 0, print)"), "init.lua:1: bad argument #1 to 'alarm' (timer object or numerical ID expected)")
        XCTAssertEqual(h.error("tmr.alarm(0, 0, 1, print)"), "init.lua:1: bad argument #2 to 'alarm' (Range: 1-6870947)")
        XCTAssertEqual(h.error("tmr.alarm(0, 10, 9, print)"), "init.lua:1: bad argument #3 to 'alarm' (Invalid mode)")
        XCTAssertEqual(h.error("tmr.alarm(0, 10, 1, 1)"), "init.lua:1: bad argument #4 to 'alarm' (Must be function)")
        // A timer object works in the static API too.
        h.run("local t = tmr.create() tmr.register(t, 5, 0, function(x) print(x == t) end) tmr.start(t)")
        h.advance(ms: 5)
        XCTAssertEqual(h.takeOutput(), "true\n")
        h.run("tmr.unregister(0)")
        XCTAssertEqual(h.eval("tmr.state(0)"), "nil")
    }

    func testStaticTimersAreAbsentIn30() {
        let h = RuntimeHarness(profile: .v3_0)
        XCTAssertEqual(h.error("tmr.alarm(0, 100, 1, print)"), "init.lua:1: attempt to call a nil value (field 'alarm')")
        XCTAssertEqual(h.eval("type(tmr.ccount())"), "number")
    }

    func testNowTimeDelay() {
        let h = RuntimeHarness()
        h.advance(ms: 2500)
        XCTAssertEqual(h.eval("tmr.now()"), "2500000")
        XCTAssertEqual(h.eval("tmr.time()"), "2")
        XCTAssertEqual(h.eval("math.type(tmr.now())"), "integer")
        // 31-bit wrap after about 35.8 minutes.
        h.advance(ms: 2_147_484 - 2500)
        XCTAssertEqual(h.eval("tmr.now() < 1000000"), "true")
        XCTAssertEqual(h.eval("tmr.time()"), "2147")
        XCTAssertEqual(h.error("tmr.delay(0)"), "init.lua:1: wrong arg range")
        XCTAssertEqual(RuntimeHarness(profile: .v3_0).error("tmr.delay(-1)"), "init.lua:1: bad argument #1 to 'delay' (wrong arg range)")
        XCTAssertEqual(h.error("tmr.delay(100) tmr.wdclr()"), "")
    }

    func testCallbackErrorPanicsIn22AndExits() {
        let h = RuntimeHarness(pinned: false, script: "tmr.create():alarm(5, 0, function() error('bad') end)")
        h.advance(ms: 5)
        XCTAssertEqual(h.takeOutput(), "PANIC: unprotected error in call to Lua API (init.lua:1: bad)\n")
        h.loop.run()
        XCTAssertEqual(h.exitStatus, 1)
    }

    func testCallbackErrorPrintsTracebackIn30() {
        let h = RuntimeHarness(profile: .v3_0, onError: .continue, pinned: false, script: """
            tmr.create():alarm(5, 0, function() error('bad') end)
            tmr.create():alarm(10, 0, function() print('still running') end)
            """)
        h.advance(ms: 5)
        XCTAssertTrue(h.output.hasPrefix("init.lua:1: bad\nstack traceback:\n"), h.output)
        h.advance(ms: 5)
        XCTAssertTrue(h.takeOutput().hasSuffix("still running\n"))
        h.loop.run()
        XCTAssertEqual(h.exitStatus, 0)
    }

    func testSetOnErrorHandlerTakesTheTracebackIn30() {
        let h = RuntimeHarness(profile: .v3_0, onError: .exit, pinned: false, script: """
            node.setonerror(function(s) print("handled: " .. s:match("^[^\\n]*")) end)
            tmr.create():alarm(5, 0, function() error('bad') end)
            """)
        h.advance(ms: 5)
        XCTAssertEqual(h.takeOutput(), "handled: init.lua:2: bad\n")
        h.loop.run()
        XCTAssertEqual(h.exitStatus, 0, "a handled error does not apply --on-error")
    }

    func testRestartRerunsTheScriptInAFreshState() {
        let h = RuntimeHarness(onError: .restart, script: """
            print("boot", tmr.time(), leftover)
            leftover = "set"
            tmr.create():alarm(1000, 0, function() error('bad') end)
            """)
        XCTAssertEqual(h.takeOutput(), "boot\t0\tnil\n")
        h.advance(ms: 1000)
        h.loop.run()
        XCTAssertEqual(h.takeOutput(), "PANIC: unprotected error in call to Lua API (init.lua:3: bad)\nboot\t0\tnil\n")
        XCTAssertEqual(h.boots, 2)
        XCTAssertEqual(h.eval("node.bootreason()"), "2")
    }

    func testRestartGivesUpAfterFiveRestartsWithinTenSeconds() {
        let h = RuntimeHarness(onError: .restart, pinned: false, script: "tmr.create():alarm(100, 0, function() error('bad') end)")
        for _ in 0..<6 { h.advance(ms: 100) }
        h.loop.run()
        XCTAssertEqual(h.boots, 6, "five restarts, then it gives up")
        XCTAssertEqual(h.exitStatus, 1)
    }

    func testSoftwareWatchdogReboots() {
        let h = RuntimeHarness(script: "print('boot') tmr.softwd(2)")
        h.advance(ms: 1999)
        XCTAssertEqual(h.boots, 1)
        h.advance(ms: 1)
        h.loop.run()
        XCTAssertEqual(h.boots, 2)
        XCTAssertEqual(h.takeOutput(), "boot\nboot\n")
        // Disabled (2.2: 0 disables): nothing left, the process ends.
        h.run("tmr.softwd(0)")
        h.runtime.unpin()
        h.advance(ms: 5000)
        XCTAssertEqual(h.exitStatus, 0)
    }

    func testNoCallbackAfterTheRuntimeFinished() {
        let h = RuntimeHarness(pinned: false, script: "tmr.create():alarm(10, 1, function() print('tick') end)")
        h.runtime.finish(status: 0)
        h.loop.run()
        XCTAssertTrue(h.runtime.vm.isClosed)
        h.advance(ms: 100)
        XCTAssertEqual(h.output, "")
        XCTAssertEqual(h.exitStatus, 0)
    }
}
