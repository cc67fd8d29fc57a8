import Board
import NIOCore
import NIOEmbedded
import XCTest

/// The simulated board's state model through its Swift API, on an `EmbeddedEventLoop`
/// whose time moves only when the test says so.
final class BoardTests: XCTestCase {
    var loop: EmbeddedEventLoop!
    var board: Board!

    override func setUp() {
        loop = EmbeddedEventLoop()
        board = Board(clock: DeviceClock(eventLoop: loop), chipID: 0xABCDEF)
        board.boot(.power)
    }

    func advance(ms: Int64) { loop.advanceTime(by: .milliseconds(ms)) }

    // MARK: GPIO

    func testPinDefaultsAndReads() {
        XCTAssertEqual(board.gpio.read(4), 0)
        board.gpio.setMode(4, .input, pullUp: true)
        XCTAssertEqual(board.gpio.read(4), 1, "an input with the pull-up reads 1")
        board.gpio.setMode(4, .output)
        board.gpio.write(4, 1)
        XCTAssertEqual(board.gpio.read(4), 1)
        XCTAssertEqual(board.gpio.outputs.map(\.level), [1])
        board.gpio.drive(4, 0)
        XCTAssertEqual(board.gpio.read(4), 1, "an output reads what it writes")
        board.gpio.setMode(4, .input)
        XCTAssertEqual(board.gpio.read(4), 0, "an input reads what the world drives")
    }

    func testTheWriteLogKeepsTheLastTenThousandWrites() {
        // Write n goes to pin n % 13: the pins say which writes were kept.
        for index in 0..<25_001 { board.gpio.write(index % 13, index % 2) }
        let outputs = board.gpio.outputs
        XCTAssertEqual(outputs.count, GPIOBank.outputLimit)
        XCTAssertEqual(outputs.map(\.pin), (15_001..<25_001).map { $0 % 13 }, "the last 10 000 writes, oldest first")
    }

    func testEdgesReachSubscribersOnlyOnChange() {
        var edges: [[Int]] = []
        board.gpio.observeEdges("test") { edges.append([$0, $1]) }
        board.gpio.setMode(2, .interrupt)
        board.gpio.drive(2, 1)
        board.gpio.drive(2, 1)
        board.gpio.drive(2, 0)
        XCTAssertEqual(edges, [[2, 1], [2, 0]])
    }

    func testScheduledEdgesArePendingUntilTheyHappen() {
        var edges: [[Int]] = []
        board.gpio.observeEdges("test") { edges.append([$0, $1]) }
        board.gpio.drive(3, 1, after: .milliseconds(500))
        XCTAssertTrue(board.hasPendingEvents)
        advance(ms: 499)
        XCTAssertEqual(edges, [])
        advance(ms: 1)
        XCTAssertEqual(edges, [[3, 1]])
        XCTAssertFalse(board.hasPendingEvents)
    }

    func testRebootKeepsDrivenLevelsAndDropsModes() {
        board.gpio.setMode(5, .output)
        board.gpio.write(5, 1)
        board.gpio.drive(6, 1)
        board.boot(.restart)
        XCTAssertEqual(board.gpio.pin(5).mode, .input)
        XCTAssertEqual(board.gpio.read(5), 0)
        XCTAssertEqual(board.gpio.read(6), 1)
    }

    // MARK: ADC

    func testADCModeChangesAtTheNextBoot() {
        board.adc.input = 2000
        XCTAssertEqual(board.adc.read(), 1024, "clamped")
        XCTAssertEqual(board.adc.readVDD33(), 65535)
        board.adc.initByte = 0xFF
        XCTAssertEqual(board.adc.read(), 1024, "takes effect after a restart")
        board.boot(.restart)
        XCTAssertEqual(board.adc.read(), 65535)
        XCTAssertEqual(board.adc.readVDD33(), 3300)
    }

    // MARK: DHT

    func testDHTEncoding() {
        XCTAssertNil(board.dht.bytes(pin: 5, shortWake: false), "no sensor: timeout")
        board.dht[5] = .model(.dht22, temperature: -5.3, humidity: 48.2)
        XCTAssertEqual(board.dht.bytes(pin: 5, shortWake: false), [0x01, 0xE2, 0x80, 0x35, 0x98])
        board.dht[6] = .model(.dht11, temperature: 23.4, humidity: 41)
        XCTAssertEqual(board.dht.bytes(pin: 6, shortWake: false), [41, 0, 23, 4, 68])
        XCTAssertNil(board.dht.bytes(pin: 6, shortWake: true), "a DHT11 ignores the 1 ms wake")
        board.dht[7] = .raw([1, 2, 3])
        XCTAssertEqual(board.dht.bytes(pin: 7, shortWake: false), [1, 2, 3, 0, 0])
    }

    // MARK: PWM

    func testPWMChannels() {
        for pin in 1...6 { XCTAssertTrue(board.pwm.attach(pin, duty: 100)) }
        XCTAssertFalse(board.pwm.attach(7, duty: 1), "at most six channels")
        board.pwm.setRunning(1, true)
        XCTAssertEqual(board.pwm.channels[1]?.outputDuty, 100)
        XCTAssertEqual(board.pwm.channels[2]?.outputDuty, 0)
        board.boot(.restart)
        XCTAssertTrue(board.pwm.channels.isEmpty)
    }

    // MARK: RTC

    func testRTCRunsNeverBackwardsAndSurvivesOnlyDeepSleep() {
        XCTAssertFalse(board.rtc.isSet)
        XCTAssertEqual(board.rtc.time.seconds, 0)
        board.rtc.set(seconds: 1_000_000)
        advance(ms: 1500)
        XCTAssertEqual(board.rtc.time.seconds, 1_000_001)
        XCTAssertEqual(board.rtc.time.microseconds, 500_000)
        // Setting an earlier time slews at 15/16 speed instead of jumping back.
        board.rtc.set(seconds: 1_000_000)
        XCTAssertEqual(board.rtc.microseconds, 1_000_001_500_000)
        advance(ms: 1600)
        XCTAssertEqual(board.rtc.microseconds, 1_000_001_500_000 + 1_500_000)
        board.boot(.rtcDeepSleepWake)
        XCTAssertTrue(board.rtc.isSet)
        board.boot(.restart)
        XCTAssertFalse(board.rtc.isSet)
    }

    // MARK: Wi-Fi

    func testStationConnectsWithEventsInOrder() {
        var events: [WiFiRadio.Event] = []
        board.wifi.observe("test") { events.append($0) }
        board.wifi.address = .init(ip: "10.0.0.7", netmask: "255.255.255.0", gateway: "10.0.0.1")
        board.boot(.restart)
        XCTAssertEqual(board.wifi.status, .connecting)
        XCTAssertTrue(board.hasPendingEvents)
        advance(ms: 100)
        XCTAssertEqual(events, [.staConnected(ssid: Array("nodemcu-host".utf8), bssid: board.wifi.bssid, channel: 6)])
        XCTAssertNil(board.wifi.currentAddress)
        advance(ms: 50)
        XCTAssertEqual(events.last, .staGotIP(ip: "10.0.0.7", netmask: "255.255.255.0", gateway: "10.0.0.1"))
        XCTAssertEqual(board.wifi.status, .gotIP)
        XCTAssertFalse(board.hasPendingEvents)

        board.wifi.disconnect()
        XCTAssertEqual(board.wifi.status, .idle)
        XCTAssertTrue(events.count == 2, "events never arrive inside the call")
        advance(ms: 0)
        XCTAssertEqual(events.last, .staDisconnected(ssid: Array("nodemcu-host".utf8), bssid: board.wifi.bssid, reason: 8))
    }

    func testFailedAssociationReportsTheReason() {
        var events: [WiFiRadio.Event] = []
        board.wifi.observe("test") { events.append($0) }
        board.wifi.accessPoints = [.init(ssid: "Home", bssid: "aa:bb:cc:dd:ee:ff", password: "right-one")]
        board.wifi.stationConfig = .init(ssid: Array("Home".utf8), password: Array("wrong-one".utf8))
        board.wifi.connect()
        advance(ms: 100)
        XCTAssertEqual(board.wifi.status, .wrongPassword)
        XCTAssertEqual(events, [.staDisconnected(ssid: Array("Home".utf8), bssid: "00:00:00:00:00:00", reason: 15)])

        events = []
        board.wifi.outcome = .noAccessPoint
        board.wifi.connect()
        advance(ms: 100)
        XCTAssertEqual(board.wifi.status, .noAPFound)
        XCTAssertEqual(events.first, .staDisconnected(ssid: Array("Home".utf8), bssid: "00:00:00:00:00:00", reason: 201))
    }

    func testModeChangesAndIdentity() {
        var events: [WiFiRadio.Event] = []
        board.wifi.observe("test") { events.append($0) }
        XCTAssertEqual(board.wifi.mac, "5c:cf:7f:ab:cd:ef")
        XCTAssertEqual(board.wifi.hostname, "NODE-ABCDEF")
        board.wifi.setMode(.softAP)
        advance(ms: 0)
        XCTAssertEqual(events.first, .modeChanged(old: 1, new: 2))
        XCTAssertEqual(board.wifi.savedMode, .softAP)
        board.boot(.restart)
        XCTAssertEqual(board.wifi.mode, .softAP)
        XCTAssertEqual(board.wifi.status, .idle, "no station, no association")
    }

    // MARK: Board file

    func testBoardFileParsesAndApplies() throws {
        let settings = try BoardSettings(parsing: """
            # a board
            gpio.4 = 1
            gpio.4.at = 200:0
            adc = 512
            dht.5 = DHT22 21.5 48.3
            wifi.ssid = HomeNet
            wifi.ip = 192.168.1.50
            wifi.ap = HomeNet, A0:F3:C1:4D:2E:17, -61, 3, 11
            wifi.outcome = no_ap
            rtc = 1600000000
            sntp = dns
            """)
        let board = Board(clock: DeviceClock(eventLoop: loop), chipID: 1, settings: settings)
        board.boot(.power)
        XCTAssertEqual(board.gpio.read(4), 1)
        advance(ms: 200)
        XCTAssertEqual(board.gpio.read(4), 0)
        XCTAssertEqual(board.adc.read(), 512)
        XCTAssertEqual(board.dht[5], .model(.dht22, temperature: 21.5, humidity: 48.3))
        XCTAssertEqual(board.wifi.stationConfig?.ssid, Array("HomeNet".utf8))
        XCTAssertEqual(board.wifi.address.ip, "192.168.1.50")
        XCTAssertEqual(board.wifi.scanResults.first?.bssid, "a0:f3:c1:4d:2e:17")
        XCTAssertEqual(board.wifi.outcome, .noAccessPoint)
        XCTAssertEqual(board.rtc.time.seconds, 1_600_000_000)
        XCTAssertEqual(board.networkTime.failure, .dns)
    }

    func testBoardFileErrorsNameTheLine() {
        XCTAssertThrowsError(try BoardSettings(parsing: "adc = 5\ngpio.13 = 1\n")) { error in
            XCTAssertEqual("\(error)", "line 2: unknown key gpio.13")
        }
        XCTAssertThrowsError(try BoardSettings(parsing: "dht.2 = DHT99 1 2")) { error in
            XCTAssertTrue("\(error)".hasPrefix("line 1: expected none, raw"))
        }
        XCTAssertThrowsError(try BoardSettings(parsing: "wifi.outcome")) { error in
            XCTAssertEqual("\(error)", "line 1: expected key = value")
        }
    }
}
