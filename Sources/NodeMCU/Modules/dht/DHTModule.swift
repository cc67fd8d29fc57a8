import Board
import LuaBridge

/// Lua: the `dht` module (more-modules spec §4), both profiles, on the board's sensors
/// (`Board.dht`). The board gives the five bytes the sensor on the pin sends; they are
/// decoded with the profile's rule for the function called (`DHTDecoder`). Followed:
/// app/modules/dht.c, app/driver/dht.c and docs/modules/dht.md of the firmware.
public final class DHTModule: LuaModule {
    public static let name = "dht"

    unowned let runtime: Runtime

    public init(runtime: Runtime) { self.runtime = runtime }

    public func register(in table: inout LuaModuleTable) {
        let profile = runtime.profile
        table.function("read") { [unowned self] lua throws(LuaError) in try read(lua, rule: .universal, shortWake: false) }
        table.function("read11") { [unowned self] lua throws(LuaError) in
            try read(lua, rule: profile == .v2_2 ? .dht11Legacy : .dht11, shortWake: false)
        }
        if profile == .v3_0 {
            table.function("read12") { [unowned self] lua throws(LuaError) in try read(lua, rule: .dht12, shortWake: false) }
        }
        // 3.0 registers `read` under this name too (spec §4: the 1 ms reader is unused).
        table.function("readxx") { [unowned self] lua throws(LuaError) in
            profile == .v2_2 ? try read(lua, rule: .tenths, shortWake: true) : try read(lua, rule: .universal, shortWake: false)
        }
        table.integer("OK", 0)
        table.integer("ERROR_CHECKSUM", -1)
        table.integer("ERROR_TIMEOUT", -2)
    }

    /// Lua: dht.read(pin), dht.read11(pin), dht.read12(pin) (3.0), dht.readxx(pin) →
    /// status, temp, humi, temp_dec, humi_dec
    private func read(_ lua: LuaState, rule: DHTDecoder.Rule, shortWake: Bool) throws(LuaError) -> Int32 {
        let pin = try lua.checkInteger(1)
        guard (1...12).contains(pin) else { throw .message("dht \(GPIOModule.pinNumber(pin)) does not exist") }
        let board = runtime.board
        // The read drives the pin: it is an output afterwards (interrupts off).
        board.gpio.setMode(pin, .output)
        let result = board.dht.bytes(pin: pin, shortWake: shortWake).map { DHTDecoder.decode($0, rule: rule) }
            ?? DHTDecoder.Result(status: -2, temperature: -999, humidity: -999)
        lua.push(result.status)
        lua.push(result.temperature)
        lua.push(result.humidity)
        let temperatureDecimals = DHTDecoder.decimals(result.temperature)
        let humidityDecimals = DHTDecoder.decimals(result.humidity)
        if runtime.profile == .v2_2 {
            lua.push(Double(temperatureDecimals))
            lua.push(Double(humidityDecimals))
        } else {
            lua.push(temperatureDecimals)
            lua.push(humidityDecimals)
        }
        return 5
    }
}

/// The firmware's DHT decoders (more-modules spec §4, "Decoders").
enum DHTDecoder {
    enum Rule {
        /// X: 16-bit tenths (2.2 `readxx`).
        case tenths
        /// U: the DHT11 special case, else X (`read`).
        case universal
        /// A: 2.2 `read11`.
        case dht11Legacy
        /// B: 3.0 `read11`.
        case dht11
        /// C: 3.0 `read12`.
        case dht12
    }

    struct Result: Equatable {
        var status: Int
        var temperature: Double
        var humidity: Double
    }

    static func sum4(_ b: [UInt8]) -> Int {
        (Int(b[0]) + Int(b[1]) + Int(b[2]) + Int(b[3])) & 0xFF == Int(b[4]) ? 0 : -1
    }

    static func decode(_ b: [UInt8], rule: Rule) -> Result {
        let dht11Special = b[1] == 0 && b[3] == 0 && Int(b[4]) == (Int(b[0]) + Int(b[2])) & 0xFF
        switch rule {
        case .tenths:
            return tenths(b)
        case .universal:
            if dht11Special { return Result(status: 0, temperature: Double(b[2]), humidity: Double(b[0])) }
            return tenths(b)
        case .dht11Legacy:
            return Result(status: sum4(b), temperature: Double(b[2]), humidity: Double(b[0]))
        case .dht11:
            if dht11Special { return Result(status: 0, temperature: Double(b[2]), humidity: Double(b[0])) }
            var temperature = b[3] & 0x80 != 0 ? -1 - Double(b[2]) : Double(b[2])
            temperature += Double(b[3] & 0x0F) * 0.1
            return Result(status: sum4(b), temperature: temperature, humidity: Double(b[0]) + Double(b[1]) * 0.1)
        case .dht12:
            if dht11Special { return Result(status: 0, temperature: Double(b[2]), humidity: Double(b[0])) }
            var temperature = Double(b[2]) + Double(b[3] & 0x0F) * 0.1
            if b[2] & 0x80 != 0 { temperature = -temperature }
            return Result(status: sum4(b), temperature: temperature, humidity: Double(b[0]) + Double(b[1]) * 0.1)
        }
    }

    private static func tenths(_ b: [UInt8]) -> Result {
        let humidity = Double(Int(b[0]) << 8 | Int(b[1])) * 0.1
        var temperature = Double(Int(b[2] & 0x7F) << 8 | Int(b[3])) * 0.1
        if b[2] & 0x80 != 0 { temperature = -temperature }
        return Result(status: sum4(b), temperature: temperature, humidity: humidity)
    }

    /// `trunc((v − trunc(v)) × 1000)` in doubles.
    static func decimals(_ value: Double) -> Int {
        Int(((value - value.rounded(.towardZero)) * 1000).rounded(.towardZero))
    }
}
