import HostNet
import NIOCore
import NIOPosix
import XCTest

final class ReadBusyPollTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        try? group.syncShutdownGracefully()
    }

    /// Runs `body` on the loop and returns its result.
    private func onLoop<T: Sendable>(_ body: @escaping @Sendable (any EventLoop) -> T) throws -> T {
        let loop = group.next()
        return try loop.submit { body(loop) }.wait()
    }

    /// Waits (bounded) until the poller has stopped; returns when that was seen.
    private func waitUntilStopped(_ poll: NIOLoopBound<ReadBusyPoll>) throws -> NIODeadline {
        let limit = NIODeadline.now() + .seconds(10)
        while NIODeadline.now() < limit {
            if try !onLoop({ _ in poll.value.isPolling }) { return .now() }
        }
        XCTFail("the poller never stopped")
        return .now()
    }

    func testALoneReadDoesNotPoll() throws {
        let stillPolling = try onLoop { loop -> Bool in
            let poll = ReadBusyPoll(eventLoop: loop, window: .milliseconds(20))
            poll.readCompleted()
            return poll.isPolling
        }
        XCTAssertFalse(stillPolling, "sparse traffic must never keep the loop busy")
    }

    func testReadsCloseTogetherPollUntilAWindowPassesWithoutARead() throws {
        let window = TimeAmount.milliseconds(20)
        let (poll, lastRead) = try onLoop { loop -> (NIOLoopBound<ReadBusyPoll>, NIODeadline) in
            let poll = ReadBusyPoll(eventLoop: loop, window: window)
            poll.readCompleted()
            // Taken before the last read, so it is no later than the poller's own time of it.
            let lastRead = NIODeadline.now()
            poll.readCompleted()
            XCTAssertTrue(poll.isPolling)
            return (NIOLoopBound(poll, eventLoop: loop), lastRead)
        }
        // The loop goes on running other work while it polls.
        let timerFired = try group.next().scheduleTask(in: .milliseconds(5)) { true }.futureResult.wait()
        XCTAssertTrue(timerFired)
        let stopped = try waitUntilStopped(poll)
        XCTAssertGreaterThanOrEqual(stopped - lastRead, window, "stopped before a quiet window had passed")
    }

    func testAReadWhilePollingExtendsThePolling() throws {
        let window = TimeAmount.milliseconds(200)
        let poll = try onLoop { loop -> NIOLoopBound<ReadBusyPoll> in
            let poll = ReadBusyPoll(eventLoop: loop, window: window)
            poll.readCompleted()
            poll.readCompleted()
            return NIOLoopBound(poll, eventLoop: loop)
        }
        let lateRead = try group.next().scheduleTask(in: .milliseconds(50)) { () -> NIODeadline in
            XCTAssertTrue(poll.value.isPolling)
            let readTime = NIODeadline.now()  // no later than the poller's time of the read
            poll.value.readCompleted()
            return readTime
        }.futureResult.wait()
        let stopped = try waitUntilStopped(poll)
        XCTAssertGreaterThanOrEqual(stopped - lateRead, window)
    }

    func testAReadThatCausedAWriteDoesNotPoll() throws {
        let stillPolling = try onLoop { loop -> Bool in
            let poll = ReadBusyPoll(eventLoop: loop, window: .milliseconds(200))
            poll.readCompleted()
            poll.wrote()  // e.g. the PUBACK for what was read, or a publish from its callback
            poll.readCompleted()
            return poll.isPolling
        }
        XCTAssertFalse(stillPolling, "the peer needs its CPU to answer what was written")
    }

    func testAReadWhoseConnectionAwaitsAReplyDoesNotPoll() throws {
        let polling = try onLoop { loop -> [Bool] in
            let poll = ReadBusyPoll(eventLoop: loop, window: .milliseconds(200))
            poll.readCompleted()
            poll.readCompleted(awaitingReply: true)  // e.g. a QoS 2 PUBREC waits for its PUBREL
            let afterAwaiting = poll.isPolling
            poll.readCompleted()  // the read before awaited a reply: its follower is an answer
            return [afterAwaiting, poll.isPolling]
        }
        XCTAssertEqual(polling, [false, false])
    }

    func testAWriteStopsPolling() throws {
        let poll = try onLoop { loop -> NIOLoopBound<ReadBusyPoll> in
            let poll = ReadBusyPoll(eventLoop: loop, window: .seconds(60))
            poll.readCompleted()
            poll.readCompleted()
            XCTAssertTrue(poll.isPolling)
            poll.wrote()
            return NIOLoopBound(poll, eventLoop: loop)
        }
        // Fails after 10 s, long before the 60 s window would end polling by itself.
        _ = try waitUntilStopped(poll)
    }
}
