/// What sits on each pin for the `dht` module (more-modules spec §4): nothing (a read
/// times out), a sensor model with its temperature and humidity, or five raw bytes.
///
/// The board only produces the bytes a sensor would send; the `dht` module decodes them
/// with the profile's rule for the function called, so a mismatched reader gives the
/// device's odd results.
public final class DHTSensors {
    /// The sensor families the firmware knows.
    public enum Model: String, Sendable, CaseIterable {
        case dht11 = "DHT11", dht12 = "DHT12", dht21 = "DHT21", dht22 = "DHT22", dht33 = "DHT33", dht44 = "DHT44"

        /// DHT11 and DHT12 send integer and first decimal digit; the others tenths.
        public var sendsDigits: Bool { self == .dht11 || self == .dht12 }
    }

    /// A sensor on a pin.
    public enum Sensor: Sendable, Equatable {
        case model(Model, temperature: Double, humidity: Double)
        /// Exactly what the sensor sends: b0…b4.
        case raw([UInt8])
    }

    private var sensors: [Int: Sensor] = [:]

    init() {}

    /// The sensor on `pin` (nil: none; default on every pin).
    public subscript(pin: Int) -> Sensor? {
        get { sensors[pin] }
        set { sensors[pin] = newValue }
    }

    /// The five bytes the sensor on `pin` answers with, or nil if nothing answers.
    /// `shortWake` is the 1 ms wake pulse (2.2's `dht.readxx`), which a DHT11/DHT12 does
    /// not answer (host choice).
    public func bytes(pin: Int, shortWake: Bool) -> [UInt8]? {
        guard let sensor = sensors[pin] else { return nil }
        switch sensor {
        case .raw(let bytes):
            return Array((bytes + [0, 0, 0, 0, 0]).prefix(5))
        case .model(let model, let temperature, let humidity):
            if shortWake && model.sendsDigits { return nil }
            return Self.encode(model: model, temperature: temperature, humidity: humidity)
        }
    }

    /// The bytes `model` sends for the reading (spec §4, "Encoding"): DHT11/DHT12 the
    /// integer part then the first decimal digit, the temperature's sign in bit 7 of b3;
    /// the others 16-bit big-endian tenths, the temperature's sign in bit 15; b4 the low
    /// byte of the sum.
    public static func encode(model: Model, temperature: Double, humidity: Double) -> [UInt8] {
        var b: [UInt8]
        if model.sendsDigits {
            // Tenths, rounded (23.4 must not become 23.3999…).
            let h = Int((max(0, min(humidity, 255.9)) * 10).rounded())
            let t = Int((min(abs(temperature), 255.9) * 10).rounded())
            let (hInt, hDigit, tInt, tDigit) = (h / 10, h % 10, t / 10, t % 10)
            b = [UInt8(hInt), UInt8(hDigit), UInt8(tInt), UInt8(tDigit) | (temperature < 0 ? 0x80 : 0)]
        } else {
            let h = Int((max(0, humidity) * 10).rounded()) & 0xFFFF
            let t = min(Int((abs(temperature) * 10).rounded()), 0x7FFF) | (temperature < 0 ? 0x8000 : 0)
            b = [UInt8(h >> 8), UInt8(h & 0xFF), UInt8(t >> 8), UInt8(t & 0xFF)]
        }
        b.append(UInt8(truncatingIfNeeded: b.reduce(0) { $0 + Int($1) }))
        return b
    }
}
