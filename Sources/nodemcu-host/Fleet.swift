import ArgumentParser
import LuaBridge
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NodeMCU

#if canImport(Glibc)
import Glibc
#endif

/// The devices one fleet process runs: indices `lower...upper`.
struct FleetSlice: Equatable {
    var lower: Int
    var upper: Int
    var count: Int { upper - lower + 1 }

    /// `A-B` (inclusive, A ≤ B, both ≥ 0).
    init?(parsing text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let lower = Int(parts[0]), let upper = Int(parts[1]),
              lower >= 0, lower <= upper else { return nil }
        self.lower = lower
        self.upper = upper
    }

    init(lower: Int, upper: Int) {
        self.lower = lower
        self.upper = upper
    }
}

extension HostCommand {
    /// The fleet slice asked for (`--devices`, `--devices-from`), or nil for one device.
    var fleetSlice: FleetSlice? {
        if let devicesFrom { return FleetSlice(parsing: devicesFrom) }
        if let devices { return FleetSlice(lower: 0, upper: devices - 1) }
        return nil
    }

    func validateFleet() throws {
        if let devices, devices < 1 || devices > 1_000_000 {
            throw ValidationError("--devices must be between 1 and 1000000.")
        }
        if let devicesFrom {
            guard let slice = FleetSlice(parsing: devicesFrom) else {
                throw ValidationError("--devices-from takes A-B: two indices, A ≤ B (e.g. 0-999).")
            }
            if let devices, slice.upper >= devices {
                throw ValidationError("--devices-from \(devicesFrom) goes past the last index of --devices \(devices) (\(devices - 1)).")
            }
        }
        if let ramp, !(ramp > 0 && ramp.isFinite) {
            throw ValidationError("--ramp takes a number of devices per second, more than 0.")
        }
        if ramp != nil && fleetSlice == nil {
            throw ValidationError("--ramp needs --devices or --devices-from.")
        }
        if fleetSlice != nil {
            // (ArgumentParser validates before the script is known; `run` checks there is one.)
            if interactive || scriptAndArguments.first == "-" {
                throw ValidationError("fleet mode (--devices, --devices-from) needs a script file and no REPL (-i).")
            }
            if pcap != nil { throw ValidationError("--pcap cannot be used in fleet mode.") }
            if scenario != nil { throw ValidationError("--scenario drives one device; it cannot be used in fleet mode.") }
        }
    }
}

/// Device-console output of one fleet device: whole lines only, each prefixed with the
/// device index (`[17] …`), written to stdout under one process-wide lock so lines of
/// devices on different event loops never interleave mid-line. Used on the device's loop.
final class FleetConsole {
    private static let lock = NIOLock()
    private let prefix: [UInt8]
    private var pending: [UInt8] = []

    init(index: Int) { prefix = Array("[\(index)] ".utf8) }

    func write(_ bytes: UnsafeRawBufferPointer) {
        guard let lastNewline = bytes.lastIndex(of: UInt8(ascii: "\n")) else {
            pending.append(contentsOf: bytes)
            return
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + prefix.count * 2 + pending.count)
        var lineStart = true
        func append(_ byte: UInt8) {
            if lineStart { out += prefix; lineStart = false }
            out.append(byte)
            if byte == UInt8(ascii: "\n") { lineStart = true }
        }
        for byte in pending { append(byte) }
        pending.removeAll(keepingCapacity: false)
        for byte in bytes[...lastNewline] { append(byte) }
        pending.append(contentsOf: bytes[(lastNewline + 1)...])
        Self.emit(out)
    }

    /// Ends an unfinished last line (the device ended mid-line).
    func flush() {
        guard !pending.isEmpty else { return }
        let out = prefix + pending + [UInt8(ascii: "\n")]
        pending = []
        Self.emit(out)
    }

    private static func emit(_ bytes: [UInt8]) {
        lock.withLock { bytes.withUnsafeBytes { Console.out($0) } }
    }
}

/// One device of the fleet. Its fields are used on its own event loop only (bridge rule
/// 3: a device never moves between loops).
final class FleetDevice: @unchecked Sendable {
    let index: Int
    let loop: EventLoop
    var runtime: Runtime?
    var startTask: Scheduled<Void>?
    var ended = false

    init(index: Int, loop: EventLoop) {
        self.index = index
        self.loop = loop
    }
}

/// Runs a fleet (`--devices`, `--devices-from`): one `Runtime` per device, spread
/// round-robin over one event loop per core, started `--ramp` devices per second; ends
/// when every device has ended (idle, os.exit, an error under --on-error exit) or after
/// `--run-for`, with status 1 if any device ended with a non-zero status.
struct FleetLauncher {
    let command: HostCommand
    let slice: FleetSlice
    let options: RuntimeOptions
    let script: Chunk?

    /// Statuses of the ended devices, and the promise fulfilled when all have ended.
    final class Tally: @unchecked Sendable {
        let lock = NIOLock()
        var statuses: [Int: Int32] = [:]
        /// `--report`: each device's numbers, taken on its loop as it ended.
        var reports: [Int: FleetReport.Device] = [:]
        let expected: Int
        let done: EventLoopPromise<Void>
        init(expected: Int, done: EventLoopPromise<Void>) {
            self.expected = expected
            self.done = done
        }

        func ended(_ index: Int, status: Int32, report: FleetReport.Device? = nil) {
            let complete: Bool = lock.withLock {
                guard statuses[index] == nil else { return false }
                statuses[index] = status
                if let report { reports[index] = report }
                return statuses.count == expected
            }
            if complete { done.succeed(()) }
        }
    }

    func run() -> Never {
        guard let path = command.scriptAndArguments.first, path != "-", script != nil else {
            fail("fleet mode (--devices, --devices-from) needs a script file")
        }
        // The launcher has changed into the --fs root (or the script's folder): that
        // folder is shared; each device writes to its own subfolder of it.
        var cwd = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&cwd, cwd.count) != nil else { fail("cannot read the working directory") }
        let shared = String(decoding: cwd.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        for folder in [shared + "/devices"] {
            if mkdir(folder, 0o755) != 0 && errno != EEXIST { fail("cannot create \(folder)") }
        }

        // Thousands of Lua states: their small blocks go to mimalloc (no per-block header).
        if LuaVM.compactHeapSupport == .mallocLibraryMissing {
            Console.diagnostic("nodemcu-host: libmimalloc.so.2 not found (Debian package libmimalloc2.0): "
                + "the devices' Lua heaps use malloc, ~6 KB more per device")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let loops = Array(group.makeIterator())
        let tally = Tally(expected: slice.count, done: loops[0].makePromise())
        let commandChunks = command.chunks.map { Chunk(name: "=(command line)", code: Array($0.utf8)) }
        let baseChipID = options.chipID
        var devices: [FleetDevice] = []
        devices.reserveCapacity(slice.count)
        for index in slice.lower...slice.upper {
            let ordinal = index - slice.lower
            let device = FleetDevice(index: index, loop: loops[ordinal % loops.count])
            devices.append(device)
            var deviceOptions = options
            let identity = DeviceIdentity(index: index, baseChipID: baseChipID)
            deviceOptions.chipID = identity.chipID
            deviceOptions.fsRoot = shared + "/devices/\(index)"
            deviceOptions.fsShared = shared
            deviceOptions.diagnosticPrefix = "[\(index)] "
            deviceOptions.compactLuaHeap = true
            let delay = command.ramp.map { TimeAmount.nanoseconds(Int64(Double(ordinal) / $0 * 1e9)) } ?? .zero
            let wantsReport = command.report != nil
            let start: @Sendable () -> Void = { [deviceOptions, script] in
                Self.start(device, options: deviceOptions, commandChunks: commandChunks, script: script,
                           tally: tally, wantsReport: wantsReport)
            }
            device.loop.execute {
                if delay == .zero {
                    start()
                } else {
                    device.startTask = device.loop.assumeIsolated().scheduleTask(in: delay) { start() }
                }
            }
        }

        let allDevices = devices
        if let runFor = command.runFor {
            loops[0].scheduleTask(in: .nanoseconds(Int64(runFor * 1e9))) {
                for device in allDevices {
                    device.loop.execute {
                        if let runtime = device.runtime {
                            runtime.finish(status: 0)
                        } else if !device.ended {
                            device.startTask?.cancel()
                            device.ended = true
                            tally.ended(device.index, status: 0)
                        }
                    }
                }
            }
        }

        try? tally.done.futureResult.wait()
        let statuses = tally.lock.withLock { tally.statuses }
        let failed = statuses.filter { $0.value != 0 }.sorted { $0.key < $1.key }
        for (index, status) in failed {
            Console.diagnostic("[\(index)] device \(index) (chip id 0x\(String(DeviceIdentity(index: index, baseChipID: baseChipID).chipID, radix: 16))) ended with status \(status)")
        }
        Console.diagnostic("fleet: \(slice.count) devices (\(slice.lower)-\(slice.upper)), \(slice.count - failed.count) ended with status 0, \(failed.count) failed")
        var status: Int32 = failed.isEmpty ? 0 : 1
        if let path = command.report.map(FileSystem.absoluteForWriting) {
            let report = FleetReport(slice: slice, baseChipID: baseChipID, statuses: statuses,
                                     devices: tally.lock.withLock { tally.reports })
            if !FileSystem.write(path, Array(report.json().utf8)) {
                Console.diagnostic("--report \(path): cannot write the file")
                status = 1
            }
        }
        exit(status)
    }

    /// Boots one device on its loop.
    private static func start(_ device: FleetDevice, options: RuntimeOptions, commandChunks: [Chunk], script: Chunk?,
                              tally: Tally, wantsReport: Bool) {
        guard !device.ended else { return }
        if let root = options.fsRoot, mkdir(root, 0o755) != 0 && errno != EEXIST {
            Console.diagnostic("[\(device.index)] cannot create \(root)")
            device.ended = true
            tally.ended(device.index, status: 1)
            return
        }
        let runtime = Runtime(eventLoop: device.loop, options: options)
        let console = FleetConsole(index: device.index)
        runtime.consoleSink = { console.write($0) }
        runtime.quirkWarnings.prefix = options.diagnosticPrefix
        device.runtime = runtime
        let report = wantsReport ? RunReport() : nil
        report?.attach(to: runtime)
        runtime.exitStatus.assumeIsolated().whenComplete { result in
            console.flush()
            device.ended = true
            device.runtime = nil
            let status = (try? result.get()) ?? 1
            tally.ended(device.index, status: status,
                        report: report.map { FleetReport.Device($0, runtime: runtime, exitStatus: status) })
        }
        runtime.start { runtime in
            runtime.installDeviceExit()
            runtime.setScriptArguments(script: options.scriptName, arguments: options.scriptArguments)
            for chunk in commandChunks {
                runtime.run(chunk)
                if runtime.halted { return }
            }
            if let script { runtime.run(script, arguments: options.scriptArguments) }
        }
    }

    private func fail(_ message: String) -> Never {
        Console.diagnostic(message)
        exit(2)
    }
}

/// `--report FILE` in fleet mode: one JSON document for the slice, the fleet's totals
/// first, then every device's own report (the single-device `--report` object, with its
/// index and chip id), so a load test asserts on the totals and finds the odd device.
struct FleetReport {
    /// One device's numbers, taken on its loop when it ended.
    struct Device: Sendable {
        var connects, reconnects, disconnects, connectFailures: Int
        var published, received, errors, reboots, timersFired: Int
        /// The single-device report object.
        var json: String

        init(_ report: RunReport, runtime: Runtime, exitStatus: Int32) {
            connects = report.connects
            reconnects = report.reconnects
            disconnects = report.disconnects
            connectFailures = report.connectFailures
            published = report.publishedTotal
            received = report.receivedTotal
            errors = report.errors.count
            reboots = report.reboots
            timersFired = report.timersFired
            json = report.json(runtime: runtime, exitStatus: exitStatus)
        }
    }

    let slice: FleetSlice
    let baseChipID: Int
    let statuses: [Int: Int32]
    let devices: [Int: Device]

    func json() -> String {
        let all = Array(devices.values)
        func total(_ field: (Device) -> Int) -> Int { all.reduce(0) { $0 + field($1) } }
        let failed = statuses.values.filter { $0 != 0 }.count
        // Devices --run-for ended before the ramp started them have no report of their own.
        let entries = (slice.lower...slice.upper).map { index -> String in
            let chip = "\"chip_id\": \(DeviceIdentity(index: index, baseChipID: baseChipID).chipID)"
            guard let device = devices[index] else {
                return "{\"index\": \(index), \(chip), \"started\": false, \"exit_status\": \(statuses[index] ?? 0)}"
            }
            // The device's object with its index and chip id in front, indented one level.
            let body = device.json.trimmingTrailingNewlines.dropFirst()   // drops "{"
            return "{\"index\": \(index), \(chip),\(body.replacingNewlines(with: "\n  "))"
        }
        return """
            {
              "fleet": {"devices": \(slice.count), "first": \(slice.lower), "last": \(slice.upper), "ended_ok": \(slice.count - failed), "failed": \(failed)},
              "totals": {
                "connect_failures": \(total(\.connectFailures)),
                "connects": \(total(\.connects)),
                "disconnects": \(total(\.disconnects)),
                "errors": \(total(\.errors)),
                "published_total": \(total(\.published)),
                "reboots": \(total(\.reboots)),
                "received_total": \(total(\.received)),
                "reconnects": \(total(\.reconnects)),
                "timers_fired": \(total(\.timersFired))
              },
              "devices": [
              \(entries.joined(separator: ",\n  "))
              ]
            }

            """
    }
}

private extension String {
    var trimmingTrailingNewlines: Substring {
        var text = Substring(self)
        while text.last == "\n" { text = text.dropLast() }
        return text
    }
}

private extension Substring {
    func replacingNewlines(with replacement: String) -> String {
        split(separator: "\n", omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
