import Board
import NIOCore
import NIOPosix
import XCTest

/// `DeviceClock` in virtual mode: jumps when idle, flows at real speed while a network
/// operation is outstanding.
final class DeviceClockTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() { group = MultiThreadedEventLoopGroup(numberOfThreads: 1) }
    override func tearDown() { try? group.syncShutdownGracefully() }

    func testVirtualTimeJumpsToEachTimerInOrder() throws {
        let loop = group.next()
        let started = NIODeadline.now()
        let fired = try loop.submit { () -> EventLoopFuture<[Int64]> in
            let clock = DeviceClock(eventLoop: loop, mode: .virtual)
            let start = clock.now
            let promise = loop.makePromise(of: [Int64].self)
            var seen: [Int64] = []
            // A day of 10-minute ticks, plus one cancelled timer that must not run.
            let cancelled = clock.schedule(in: .hours(1)) { seen.append(-1) }
            cancelled.cancel()
            func tick() {
                clock.schedule(in: .minutes(10)) {
                    seen.append((clock.now - start).nanoseconds / 1_000_000_000)
                    if seen.count == 144 { promise.succeed(seen) } else { tick() }
                }
            }
            tick()
            return promise.futureResult
        }.wait().wait()
        XCTAssertEqual(fired.count, 144)
        XCTAssertEqual(fired.first, 600)
        XCTAssertEqual(fired.last, 86_400)
        XCTAssertLessThan((NIODeadline.now() - started).nanoseconds, 2_000_000_000)
    }

    func testAnOutstandingOperationMakesTimeFlowInsteadOfJumping() throws {
        let loop = group.next()
        let result = try loop.submit { () -> EventLoopFuture<(Bool, Int64)> in
            let clock = DeviceClock(eventLoop: loop, mode: .virtual)
            let start = clock.now
            let promise = loop.makePromise(of: (Bool, Int64).self)
            clock.beginNetworkOperation()
            // Due in 200 ms of device time: with the operation outstanding it comes after
            // 200 ms of real time, not at once.
            let real = NIODeadline.now()
            clock.schedule(in: .milliseconds(200)) {
                let waited = NIODeadline.now() - real
                let value = (waited >= .milliseconds(150), (clock.now - start).nanoseconds / 1_000_000)
                clock.endNetworkOperation()
                promise.succeed(value)
            }
            return promise.futureResult
        }.wait().wait()
        XCTAssertTrue(result.0, "the timer fired before real time passed")
        XCTAssertGreaterThanOrEqual(result.1, 200)
    }

    func testEndingTheOperationLetsTimeJump() throws {
        let loop = group.next()
        let started = NIODeadline.now()
        let elapsed = try loop.submit { () -> EventLoopFuture<Int64> in
            let clock = DeviceClock(eventLoop: loop, mode: .virtual)
            let start = clock.now
            let promise = loop.makePromise(of: Int64.self)
            let operation = clock.makeNetworkOperation()
            operation.isActive = true
            clock.schedule(in: .hours(5)) { promise.succeed((clock.now - start).nanoseconds / 1_000_000_000) }
            loop.assumeIsolated().scheduleTask(in: .milliseconds(50)) { operation.isActive = false }
            return promise.futureResult
        }.wait().wait()
        XCTAssertEqual(elapsed, 5 * 3600)
        XCTAssertLessThan((NIODeadline.now() - started).nanoseconds, 2_000_000_000)
    }

    func testAdvanceMovesVirtualTimeOnly() throws {
        let loop = group.next()
        let moved = try loop.submit { () -> Int64 in
            let clock = DeviceClock(eventLoop: loop, mode: .virtual)
            let start = clock.now
            clock.advance(by: .microseconds(1500))
            return (clock.now - start).nanoseconds
        }.wait()
        XCTAssertEqual(moved, 1_500_000)
    }
}
