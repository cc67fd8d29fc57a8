import HostNet
import NIOCore
import NIOPosix
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class FlushSchedulerTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() {
        try? group.syncShutdownGracefully()
    }

    /// Counts the steps of a chain of flushes, each requested while the previous one's
    /// write completes (as a `puback`-driven publish loop does), until `stop`.
    private final class Chain {
        let scheduler: FlushScheduler
        var steps = 0
        var stopped = false
        var stepsWhenReadArrived: Int?

        init(scheduler: FlushScheduler) {
            self.scheduler = scheduler
        }

        func step() {
            guard !stopped else { return }
            steps += 1
            scheduler.completingWrite { scheduler.schedule { self.step() } }
        }
    }

    /// Records the first read of a pipe on the loop.
    private final class ReadRecorder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let chain: Chain
        init(chain: Chain) { self.chain = chain }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard chain.stepsWhenReadArrived == nil else { return }
            chain.stepsWhenReadArrived = chain.steps
            chain.stopped = true
        }
    }

    func testAChainOfFlushesLetsTheLoopRead() throws {
        let loop = group.next()
        var fds: [CInt] = [-1, -1]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[1]) }
        let chain = try loop.submit {
            NIOLoopBound(Chain(scheduler: FlushScheduler(eventLoop: loop)), eventLoop: loop)
        }.wait()
        let recorder = try loop.submit { NIOLoopBound(ReadRecorder(chain: chain.value), eventLoop: loop) }.wait()
        _ = try NIOPipeBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(recorder.value)
                }
            }
            .takingOwnershipOfDescriptor(input: fds[0]).wait()

        try loop.submit { chain.value.step() }.wait()
        // The chain runs on its own from here; the byte must be read while it does.
        var byte: UInt8 = 1
        XCTAssertEqual(write(fds[1], &byte, 1), 1)
        let limit = NIODeadline.now() + .seconds(10)
        var result: (steps: Int?, stopped: Bool) = (nil, false)
        while NIODeadline.now() < limit {
            // A timer still fires under a chain of plain tasks (the loop runs due timers
            // with them), so it can observe a starved loop.
            result = try loop.scheduleTask(in: .milliseconds(5)) {
                (chain.value.stepsWhenReadArrived, chain.value.stopped)
            }.futureResult.wait()
            if result.steps != nil { break }
        }
        guard let steps = result.steps else {
            try loop.submit { chain.value.stopped = true }.wait()
            return XCTFail("the loop never read while the chain ran")
        }
        XCTAssertGreaterThan(steps, 1, "the chain had not started")
    }

    func testAChainWaitsForAPollOnlyAfterItsSlice() throws {
        let loop = group.next()
        let waits = try loop.submit { () -> [Bool] in
            let scheduler = FlushScheduler(eventLoop: loop, slice: .hours(1))
            var waits: [Bool] = []
            // Outside a write completion: never waits.
            scheduler.schedule {}
            waits.append(scheduler.isWaitingForPoll)
            // Inside, but the chain is younger than its slice.
            scheduler.completingWrite { scheduler.schedule {} }
            waits.append(scheduler.isWaitingForPoll)
            let immediate = FlushScheduler(eventLoop: loop, slice: .zero)
            immediate.completingWrite { immediate.schedule {} }
            waits.append(immediate.isWaitingForPoll)
            return waits
        }.wait()
        XCTAssertEqual(waits, [false, false, true])
    }

    func testAWaitingFlushRunsAfterThePoll() throws {
        let loop = group.next()
        let ran = loop.makePromise(of: Bool.self)
        try loop.submit {
            let scheduler = FlushScheduler(eventLoop: loop, slice: .zero)
            scheduler.completingWrite {
                scheduler.schedule {
                    ran.succeed(!scheduler.isWaitingForPoll)
                    _ = scheduler  // kept alive until the flush ran
                }
            }
        }.wait()
        XCTAssertTrue(try ran.futureResult.wait())
    }
}
