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
