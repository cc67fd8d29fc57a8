import CLua
import LuaBridge
import XCTest

/// The device heap budget of the shim's allocator (`--heap`).
final class LuaHeapTests: XCTestCase {
    private func run(_ lua: LuaState, _ code: String) -> String? {
        if let message = lua.load(Array(code.utf8), chunkName: "=test") { return message }
        if case .error(let error) = lua.pcall(arguments: 0, results: 0) { return error.message }
        return nil
    }

    func testOnlyAllocationsAfterTheBudgetStartsCount() {
        let vm = LuaVM()
        vm.openStandardLibraries()
        let lua = vm.state
        let before = lua.heapStatus
        XCTAssertFalse(before.isCounting)
        XCTAssertGreaterThan(before.used, 10_000, "the standard libraries live in the state")
        lua.setHeapBudget(16 * 1024)
        let status = lua.heapStatus
        XCTAssertTrue(status.isCounting)
        XCTAssertEqual(status.limit, 16 * 1024)
        XCTAssertLessThan(status.used, 1024)
        XCTAssertEqual(status.free, 16 * 1024 - status.used)
    }

    /// A compact-heap state (a fleet device's) takes its blocks from mimalloc: it runs,
    /// grows, collects, fails past its budget and recovers, exactly as a malloc state.
    func testCompactHeapStateBehavesAsAMallocState() throws {
        let support = LuaVM.compactHeapSupport
        try XCTSkipIf(support == .mallocSanitizerBuild, "sanitizer builds keep malloc for every state")
        XCTAssertEqual(support, .mimalloc, "libmimalloc.so.2 (Debian libmimalloc2.0: scripts/install-deps)")
        let results: [(String?, String?, Int)] = [false, true].map { compact in
            let vm = LuaVM(compactHeap: compact)
            defer { vm.close() }
            vm.openStandardLibraries()
            let lua = vm.state
            let grown = run(lua, """
                local t = {} for i = 1, 20000 do t[i] = ("%d"):rep(i % 7) .. i end
                assert(#t == 20000 and t[19999] == "19999" and t[20000] == "%d20000")
                t = nil collectgarbage()
                """)
            lua.setHeapBudget(20 * 1024)
            let refused = run(lua, "local t = {} for i = 1, 10000 do t[i] = i end")
            XCTAssertNil(run(lua, "collectgarbage() x = string.rep('a', 1000)"))
            return (grown, refused, lua.heapStatus.used)
        }
        for (grown, refused, _) in results {
            XCTAssertNil(grown)
            XCTAssertEqual(refused, "not enough memory")
        }
        // The accounting counts requested bytes, whichever allocator serves them.
        XCTAssertEqual(results[1].2, results[0].2)
    }

    func testPastTheBudgetLuaFailsWithNotEnoughMemoryAndRecovers() {
        let vm = LuaVM()
        vm.openStandardLibraries()
        let lua = vm.state
        lua.setHeapBudget(20 * 1024)
        XCTAssertEqual(run(lua, "local t = {} for i = 1, 10000 do t[i] = i end"), "not enough memory")
        // The failed table is garbage: the next allocation collects it and succeeds.
        XCTAssertNil(run(lua, "collectgarbage() x = string.rep('a', 1000)"))
        XCTAssertGreaterThan(lua.heapStatus.peak, 10 * 1024)
        XCTAssertLessThanOrEqual(lua.heapStatus.peak, 20 * 1024)
    }

    func testSwiftPushesNeverFailButAreCounted() {
        let vm = LuaVM()
        vm.openStandardLibraries()
        let lua = vm.state
        lua.setHeapBudget(4 * 1024)
        // Swift is in control: an allocation past the budget must not raise (bridge rule 1).
        lua.push(String(repeating: "x", count: 10_000))
        XCTAssertGreaterThan(lua.heapStatus.used, 4 * 1024)
        XCTAssertEqual(lua.heapStatus.free, 0)
        lua.setGlobal("big")
        XCTAssertEqual(run(lua, "local s = string.rep('y', 100)"), "not enough memory")
        // Once the string is garbage, the emergency collection of the next allocation frees it.
        lua.pushNil()
        lua.setGlobal("big")
        XCTAssertNil(run(lua, "local s = string.rep('y', 100)"))
        XCTAssertLessThan(lua.heapStatus.used, 4 * 1024)
    }

    func testChargeAndCredit() {
        let vm = LuaVM()
        let lua = vm.state
        lua.setHeapBudget(8 * 1024)
        XCTAssertTrue(lua.chargeHeap(6 * 1024))
        XCTAssertFalse(lua.chargeHeap(4 * 1024))
        lua.creditHeap(6 * 1024)
        XCTAssertTrue(lua.chargeHeap(4 * 1024))
    }
}
