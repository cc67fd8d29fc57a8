import ArgumentParser
import HostNet
import NodeMCU

/// `nodemcu-host [options] [script.lua [args...]]`
struct HostCommand: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "nodemcu-host",
        abstract: "Run a NodeMCU (ESP8266) Lua script unchanged on this machine.",
        discussion: """
            With no script and a terminal on standard input, starts an interactive \
            Lua REPL whose timers and network callbacks keep running while you type. \
            The process ends when nothing can produce a callback any more (no armed \
            timer, no connecting or connected client), or after --run-for.

            Porting tests: `nodemcu-host test [PATH...]` runs *_test.lua and NTest_*.lua \
            files, each in a fresh runtime, with TAP (--tap) and JUnit (--junit FILE) \
            output; see `nodemcu-host test --help`.

            Exit status: 0 when idle or when --run-for ends; n for os.exit(n); 1 for \
            an uncaught error (a script that does not load, an error in the main \
            chunk, an error in a callback under --on-error exit); 2 for bad usage; \
            3 when a --scenario fails.
            """,
        version: version
    )

    @Option(name: .customShort("e"), help: ArgumentHelp("Run CHUNK first (repeatable).", valueName: "CHUNK"))
    var chunks: [String] = []

    @Flag(name: .customShort("i"), help: "Start the REPL after the script.")
    var interactive = false

    @Option(help: ArgumentHelp("Firmware API profile: 2.2 or 3.0.", valueName: "2.2|3.0"))
    var firmware: FirmwareProfile = .v2_2

    @Option(
        help: ArgumentHelp(
            "Send connections for FROM to TO instead (repeatable). FROM is host or host:port, TO is host:port or host; applies to every outgoing mqtt, net and tls connection.",
            valueName: "FROM=TO"))
    var remap: [String] = []

    @Option(name: .customLong("run-for"), help: ArgumentHelp("Stop after SECONDS of device time and exit 0 (devices never exit; with --virtual-time a script whose timers never stop needs it).", valueName: "SECONDS"))
    var runFor: Double?

    @Option(
        name: .customLong("on-error"),
        help: ArgumentHelp(
            "After a Lua error: exit (status 1; default for a script), restart (re-run the script in a fresh Lua state, like a device reboot; gives up after 5 restarts within 10 s) or continue (default in the REPL).",
            valueName: "exit|restart|continue"))
    var onError: ErrorPolicy?

    @Option(name: .customLong("fs"), help: ArgumentHelp("Root folder for file access, dofile and require (default: the script's folder, else the current one).", valueName: "DIR"))
    var fsRoot: String?

    @Option(
        name: .customLong("watchdog"),
        help: ArgumentHelp(
            "The device watchdog: Lua that runs SECONDS without returning to the event loop (or calling tmr.wdclr()) ends in a watchdog reset: the ROM's reset line, a simulated reboot, node.bootreason() 2, 3 (under --on-error exit: status 1). Default 3.2 as on the ESP8266; 0 turns it off.",
            valueName: "SECONDS"))
    var watchdog: Double?

    @Option(name: .customLong("max-inflight"), help: ArgumentHelp("QoS>0 messages in flight per MQTT client (default 1, as on the device). Above 1, PUBREL and PUBCOMP go out ahead of queued publishes (MQTT 3.1.1 allows it; the device's single slot does not).", valueName: "N"))
    var maxInflight = 1

    @Option(
        name: .customLong("busy-poll"),
        help: ArgumentHelp(
            "While a broker streams messages in (reads less than MICROSECONDS apart, nothing written in between), stay awake for MICROSECONDS after each read instead of sleeping, then read what arrived meanwhile in one go (default 0: never). Costs CPU while messages stream in; receives them faster.",
            valueName: "MICROSECONDS"))
    var busyPoll = 0

    @Option(
        help: ArgumentHelp(
            "Write every TCP connection the host makes or accepts, and every UDP datagram it sends or receives, to FILE in pcap format (tcpdump -r FILE, Wireshark); TLS connections as plaintext.",
            valueName: "FILE"))
    var pcap: String?

    @Flag(
        help: ArgumentHelp(
            "Let net servers and UDP sockets listen on all interfaces (default: 127.0.0.1 only). Device scripts often run a telnet console that feeds what arrives to node.input; on a PC, where os and io exist, exposing it hands everyone on the network a shell."))
    var expose = false

    @Option(
        help: ArgumentHelp(
            "Also trust the CA certificate(s) in FILE (PEM) for tls, mqtt secure and https connections, without changing the script (brokers with a private CA).",
            valueName: "FILE"))
    var cafile: String?

    @Option(
        help: ArgumentHelp(
            "The simulated board's state: pin levels and scheduled edges, ADC, DHT sensors, RTC, Wi-Fi station (SSID, outcome, addresses, RSSI, scan results, link drops), sntp failures. Lines of key = value, e.g. 'gpio.4.at = 500:0', 'dht.5 = DHT22 21.5 48', 'wifi.outcome = wrong_password'; see README, \"The simulated board\".",
            valueName: "FILE"))
    var board: String?

    @Option(
        help: ArgumentHelp(
            "Drive the run with a host-side Lua scenario (its own Lua state): at(ms, fn), on_gpio, on_publish, on_console; board inputs gpio, adc, dht, uart, wifi_drop, wifi_restore; network faults drop, half_open, delay, fragment, cut_after, refuse, dns_fail; broker(\"host:port\") and publish through its own MQTT client; expect, expect_publish, expect_gpio, expect_console, done. A failed expectation ends the run with status 3 and a message naming the device time. See README, \"Scenarios\".",
            valueName: "FILE.lua"))
    var scenario: String?

    @Option(
        help: ArgumentHelp(
            "Fleet mode: run N independent devices of the script in this process (indices 0…N-1), each with its own Lua state, chip id (base + index), client id, flash folder <fs>/devices/<index>/ (copy-on-write from the shared folder) and reboot cycle, spread over one event loop per core. Console lines are prefixed [index].",
            valueName: "N"))
    var devices: Int?

    @Option(
        name: .customLong("devices-from"),
        help: ArgumentHelp("Fleet mode: run only the devices A…B (inclusive) of the index range, to split one fleet over several processes or machines.", valueName: "A-B"))
    var devicesFrom: String?

    @Option(help: ArgumentHelp("Fleet mode: start R devices per second (default: all at once).", valueName: "R"))
    var ramp: Double?

    @Option(
        help: ArgumentHelp(
            "Install only these firmware modules, comma-separated, as a firmware built with that module list (default: every module of the profile). Fewer modules: less memory per device.",
            valueName: "LIST"))
    var modules: String?

    @Flag(help: "One stderr line per MQTT packet and timer event.")
    var trace = false

    @Option(
        help: ArgumentHelp(
            "Run device time N times faster than real time (tmr, MQTT keepalive and every timeout alike; --run-for counts device time).",
            valueName: "N"))
    var speed: Double?

    @Flag(
        name: .customLong("virtual-time"),
        help: "Skip idle time: when nothing can run and no network operation is outstanding (a connect, an unacknowledged MQTT packet, an unanswered PINGREQ), device time jumps to the next timer; while one is outstanding it runs at real speed. --run-for counts device time.")
    var virtualTime = false

    @Option(
        help: ArgumentHelp(
            "The device's free heap for the script: past it allocations fail with \"not enough memory\" as on the ESP8266 (after an emergency collection); node.heap() reports what is left; the peak is printed at exit. Suffixes k (1024) and M (1048576). The host's own tables do not count.",
            valueName: "BYTES"))
    var heap: String?

    @Option(
        help: ArgumentHelp(
            "Device defaults: esp8266 sets --heap 44k (about the free heap of a 2.2.1 build after boot) unless --heap is given.",
            valueName: "esp8266"))
    var device: String?

    @Flag(
        help: "Report, with file:line, what runs here but not on the device: Lua 5.3-only syntax (checked by luac5.1), io/os beyond os.exit, Lua 5.3-only functions, modules outside the default firmware build, floats that print as 5.0. Any finding makes the exit status 1.")
    var strict = false

    @Option(
        help: ArgumentHelp(
            "At exit, write a JSON report to FILE: MQTT messages published and received per topic (count, bytes), connects, disconnects, reconnects, timers fired, errors, peak heap, wall and device time.",
            valueName: "FILE.json"))
    var report: String?

    @Argument(
        help: ArgumentHelp("The script ('-' reads it from standard input) and its arguments (arg[1], …).", valueName: "script.lua [args...]"))
    var scriptAndArguments: [String] = []

    /// Options that take a value, so `split` does not mistake the value for the script.
    static let optionsWithValues: Set<String> = [
        "-e", "--firmware", "--remap", "--run-for", "--on-error", "--fs", "--max-inflight", "--busy-poll", "--pcap",
        "--cafile", "--board", "--speed", "--heap", "--device", "--report", "--scenario", "--watchdog",
        "--devices", "--devices-from", "--ramp", "--modules",
    ]

    /// Splits the command line at the script: host options before it, the script
    /// and its own arguments (which may look like options) from it on.
    static func split(_ arguments: [String]) -> (host: [String], script: [String]) {
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--" { return (Array(arguments[..<index]), Array(arguments[(index + 1)...])) }
            if argument == "-" || !argument.hasPrefix("-") { break }
            index += optionsWithValues.contains(argument) ? 2 : 1
        }
        index = min(index, arguments.count)
        return (Array(arguments[..<index]), Array(arguments[index...]))
    }

    func validate() throws {
        if maxInflight < 1 || maxInflight > 65_535 {
            throw ValidationError("--max-inflight must be between 1 and 65535.")
        }
        if busyPoll < 0 || busyPoll > 1_000_000 {
            throw ValidationError("--busy-poll must be between 0 and 1000000 microseconds.")
        }
        if let watchdog, !(watchdog >= 0 && watchdog.isFinite && watchdog < 1e9) {
            throw ValidationError("--watchdog takes a number of seconds, 0 (off) or more.")
        }
        if let runFor, !(runFor >= 0 && runFor.isFinite) {
            throw ValidationError("--run-for takes a number of seconds, 0 or more.")
        }
        var rules = AddressRemap()
        for entry in remap {
            do {
                try rules.add(parsing: entry)
            } catch {
                throw ValidationError("--remap: \(error)")
            }
        }
        if let speed, !(speed > 0 && speed.isFinite) {
            throw ValidationError("--speed takes a positive number.")
        }
        if speed != nil && virtualTime {
            throw ValidationError("--speed and --virtual-time cannot be used together.")
        }
        if let heap, Self.parseBytes(heap) == nil {
            throw ValidationError("--heap takes a number of bytes, optionally with k or M (e.g. 40k).")
        }
        if let device, device != "esp8266" {
            throw ValidationError("--device: the only device is esp8266.")
        }
        try validateFleet()
        if let modules {
            let known = Set(ModuleRegistry.moduleNames)
            for name in modules.split(separator: ",") where !known.contains(String(name)) {
                throw ValidationError("--modules: no module '\(name)' (the host has \(ModuleRegistry.moduleNames.sorted().joined(separator: ", "))).")
            }
        }
        if scriptAndArguments.first == "-" && interactive {
            throw ValidationError("-i cannot be used when the script is read from standard input ('-').")
        }
    }

    /// `40960`, `40k` (×1024) or `1M` (×1048576); nil if malformed or not positive.
    static func parseBytes(_ text: String) -> Int? {
        var digits = Substring(text)
        var factor = 1
        switch digits.last {
        case "k"?, "K"?: factor = 1024
        case "m"?, "M"?: factor = 1024 * 1024
        default: break
        }
        if factor > 1 { digits = digits.dropLast() }
        guard let value = Int(digits), value > 0, value <= Int(Int32.max) / factor else { return nil }
        return value * factor
    }

    /// The heap budget the options ask for (`--heap`, else the `--device` default).
    var heapLimit: Int? {
        if let heap { return Self.parseBytes(heap) }
        return device == "esp8266" ? 44 * 1024 : nil
    }

    func run() throws {
        // ArgumentParser calls this; the real work happens in `Launcher.run`, which
        // never returns.
        Launcher(command: self).run()
    }
}

extension FirmwareProfile: ExpressibleByArgument {}
extension ErrorPolicy: ExpressibleByArgument {}
