import CLua
import LuaBridge
import XCTest

/// Counts deinits, to prove a boxed Swift object is released exactly once.
final class Tracked {
    nonisolated(unsafe) static var deinits = 0
    deinit { Tracked.deinits += 1 }
}

final class LuaBridgeTests: XCTestCase {
    var vm: LuaVM!
    var lua: LuaState { vm.state }
    var trackedType: LuaObjectType<Tracked>!

    override func setUp() {
        vm = LuaVM()
        vm.openStandardLibraries()
        Tracked.deinits = 0
        trackedType = LuaObjectType<Tracked>(name: "test.tracked", in: vm.state, uncheckedMethods: [
            ("start", { [unowned self] lua throws(LuaError) in
                _ = try trackedType.check(1, on: lua)
                return 0
            }),
            ("register", { [unowned self] lua throws(LuaError) in
                _ = try trackedType.check(1, on: lua)
                let ms = try checkInteger(lua, 2)
                guard (1...6_870_947).contains(ms) else { throw .argument(2, "Range: 1-6870947") }
                return 0
            }),
            ("close", { [unowned self] lua throws(LuaError) in
                lua.push(trackedType.release(at: 1, on: lua) != nil)
                return 1
            }),
        ])
        lua.push(function: { [unowned self] lua throws(LuaError) in
            trackedType.push(Tracked(), on: lua)
            return 1
        })
        lua.setGlobal("newTracked")
    }

    override func tearDown() {
        vm.close()
    }

    func checkInteger(_ lua: LuaState, _ index: Int32) throws(LuaError) -> Int {
        guard let value = lua.integer(at: index) else {
            throw .argument(index, "number expected, got \(lua.typeName(at: index))")
        }
        return value
    }

    /// Runs `code`; returns the error message, or nil if it ran without error.
    @discardableResult
    func run(_ code: String) -> String? {
        XCTAssertNil(lua.load(Array(code.utf8), chunkName: "=test"))
        switch lua.pcall(arguments: 0, results: 0) {
        case .ok: return nil
        case .error(let error): return error.message
        }
    }

    func testArgumentErrorTextsComeFromTheTrampoline() {
        XCTAssertEqual(run("local t = newTracked(); t:register(0)"),
                       "test:1: bad argument #1 to 'register' (Range: 1-6870947)")
        XCTAssertEqual(run("local t = newTracked(); t:register('x')"),
                       "test:1: bad argument #1 to 'register' (number expected, got string)")
        XCTAssertEqual(run("local t = newTracked(); t:register()"),
                       "test:1: bad argument #1 to 'register' (number expected, got no value)")
        // Not a method call: the argument number counts the object.
        XCTAssertEqual(run("local t = newTracked(); local r = t.register; r(t, 0)"),
                       "test:1: bad argument #2 to 'r' (Range: 1-6870947)")
        XCTAssertEqual(run("local t = newTracked(); t.start({})"),
                       "test:1: bad argument #1 to 'start' (test.tracked expected, got table)")
        XCTAssertEqual(run("local t = newTracked(); local s = {start = t.start}; s:start()"),
                       "test:1: calling 'start' on bad self (test.tracked expected, got table)")
        XCTAssertNil(run("local t = newTracked(); t:register(5.9)"))
    }

    func testObjectsPrintAsUserdataAndHaveNoName() {
        XCTAssertNil(run("""
            local t = newTracked()
            assert(tostring(t):match('^userdata: 0x'), tostring(t))
            assert(getmetatable(t).__name == nil)
            """))
    }

    func testBoxIsReleasedOnceByGC() {
        XCTAssertNil(run("do local t = newTracked() end collectgarbage() collectgarbage()"))
        XCTAssertEqual(Tracked.deinits, 1)
        XCTAssertNil(run("collectgarbage() collectgarbage()"))
        XCTAssertEqual(Tracked.deinits, 1)
    }

    func testBoxIsReleasedOnceByExplicitCloseThenGC() {
        XCTAssertNil(run("""
            local t = newTracked()
            assert(t:close() == true)
            assert(t:close() == false)
            collected = t
            """))
        XCTAssertEqual(Tracked.deinits, 1)
        // A method on a released box reports it like a foreign object.
        XCTAssertEqual(run("collected:start()"), "test:1: calling 'start' on bad self (test.tracked expected, got userdata)")
        XCTAssertNil(run("collected = nil collectgarbage() collectgarbage()"))
        XCTAssertEqual(Tracked.deinits, 1)
    }

    func testRaisingGCDuringABridgedCallNeitherLeaksNorCrashes() {
        // A Swift body that allocates heavily: were the collector to run a __gc
        // inside it, the error would longjmp across Swift frames.
        nonisolated(unsafe) var started = 0
        nonisolated(unsafe) var completed = 0
        lua.push(function: { [unowned self] lua throws(LuaError) in
            started += 1
            let object = Tracked()
            for i in 0..<2_000 { lua.push("garbage string number \(i)"); lua.pop() }
            trackedType.push(object, on: lua)
            completed += 1
            return 1
        })
        lua.setGlobal("allocate")
        XCTAssertNil(run("""
            collectgarbage("setpause", 0)
            collectgarbage("setstepmul", 1000)
            gcErrors = 0
            for i = 1, 200 do
              local ok, err = pcall(function()
                setmetatable({}, {__gc = function() error("gc boom") end})
                local t = allocate()
                for j = 1, 100 do local s = {} end
              end)
              if not ok then
                assert(tostring(err):find("gc boom"), err)
                gcErrors = gcErrors + 1
              end
            end
            collectgarbage("setpause", 200)
            """))
        // The __gc errors surface in Lua code (as Lua 5.3 does), never inside Swift:
        // every body that started ran to its end.
        XCTAssertGreaterThan(started, 0)
        XCTAssertEqual(started, completed)
        _ = run("collectgarbage() collectgarbage()")
        _ = run("collectgarbage() collectgarbage()")
        XCTAssertEqual(Tracked.deinits, completed)
        XCTAssertNil(run("assert(gcErrors > 0, 'no __gc error was provoked') local t = newTracked() t:start()"))
    }

    func testClosingTheStateReleasesEverythingOnce() {
        XCTAssertNil(run("keep = {newTracked(), newTracked()} newTracked():close()"))
        XCTAssertEqual(Tracked.deinits, 1)
        vm.close()
        XCTAssertEqual(Tracked.deinits, 3)
        XCTAssertTrue(vm.isClosed)
    }

    func testErrorValuesThatAreNotStrings() {
        XCTAssertEqual(run("error({})"), "(error object is a table value)")
        XCTAssertEqual(run("error(setmetatable({}, {__tostring = function() return 'custom' end}))"), "custom")
    }

    func testTracebackAccompaniesTheMessage() {
        XCTAssertNil(lua.load(Array("local function f() error('deep') end f()".utf8), chunkName: "@init.lua"))
        guard case .error(let error) = lua.pcall(arguments: 0, results: 0) else { return XCTFail("no error") }
        XCTAssertEqual(error.message, "init.lua:1: deep")
        XCTAssertTrue(error.traceback.hasPrefix("init.lua:1: deep\nstack traceback:\n"), error.traceback)
        XCTAssertTrue(error.traceback.contains("in local 'f'") || error.traceback.contains("in function 'f'"), error.traceback)
    }

    func testCollectorKeepsItsOwnPaceAcrossBridgedCalls() {
        // Holding the collector around Swift must not change how much it works: with
        // LUA_GCRESTART after each bridged call it started a step at the next allocation
        // every time and ran 120 times as many cycles as the same loop without the calls
        // (12 499 vs 104).
        lua.push(function: { _ throws(LuaError) in 0 })
        lua.setGlobal("noop")
        XCTAssertNil(run("""
            local function cycles(withCalls)
              local n, live = 0, true
              local function sentinel()
                setmetatable({}, {__gc = function() n = n + 1; if live then sentinel() end end})
              end
              collectgarbage()
              sentinel()
              local s
              for i = 1, 100000 do
                s = "x" .. i
                if withCalls then noop() end
              end
              live = false
              return n
            end
            local without, with = cycles(false), cycles(true)
            assert(without > 0, "the collector did not run")
            assert(with <= 2 * without + 2, ("%d cycles with bridged calls, %d without"):format(with, without))
            """))
    }

    func testCollectorStillRunsForLuaCode() {
        XCTAssertNil(run("""
            local before = collectgarbage("count")
            for i = 1, 200000 do local s = {} end
            assert(collectgarbage("count") < before + 4000, "the collector did not run")
            assert(collectgarbage("isrunning"))
            collectgarbage("stop")
            """))
        // The script's own "stop" survives our pauses around Swift code.
        XCTAssertNil(run("assert(not collectgarbage('isrunning')) collectgarbage('restart')"))
        XCTAssertNil(run("assert(collectgarbage('isrunning'))"))
    }

    // MARK: Watchdog

    /// The watchdog counts the script's time: gaps in which the thread did not run Lua
    /// (here: host code blocked for 60 ms, as a descheduled thread or a full pipe would be)
    /// move the deadline, so five of them do not add up to a 100 ms watchdog; Lua that
    /// keeps running for the same time is reset.
    func testWatchdogCountsTheScriptsTimeNotOffCPUGaps() {
        lua.push(function: { lua throws(LuaError) in
            usleep(60_000)
            return 0
        })
        lua.setGlobal("blocked")
        lua.setWatchdog(timeout: 100_000_000)
        // A busy loop after each block lets the hook look at the clock.
        XCTAssertNil(run("for i = 1, 5 do blocked() for j = 1, 5000 do end end"))
        XCTAssertEqual(run("local t = os.time() + 2 while os.time() < t do end"), "watchdog reset")
        lua.setWatchdog(timeout: nil)
    }
}
