/// The software PWM of the `pwm` module (more-modules spec §6): up to six channels that
/// share one frequency. Each channel keeps its stored duty and whether it is running;
/// the output duty is the stored one while running, else 0. No signal is produced.
public final class PWMController {
    /// At most this many channels.
    public static let maxChannels = 6

    public struct Channel: Sendable, Equatable {
        /// The stored duty, 0…1023.
        public var duty: Int
        public var running: Bool
        /// What the pin outputs now.
        public var outputDuty: Int { running ? duty : 0 }
    }

    /// The shared frequency in Hz (default 500).
    public internal(set) var frequency = 500
    public private(set) var channels: [Int: Channel] = [:]

    init() {}

    /// Makes `pin` a channel (stopped) with `duty`; false if six channels exist already.
    public func attach(_ pin: Int, duty: Int) -> Bool {
        if channels[pin] == nil && channels.count >= Self.maxChannels { return false }
        channels[pin] = Channel(duty: duty, running: channels[pin]?.running ?? false)
        return true
    }

    public func setFrequency(_ hz: Int) { frequency = hz }

    public func setDuty(_ pin: Int, _ duty: Int) { channels[pin]?.duty = duty }

    public func setRunning(_ pin: Int, _ running: Bool) { channels[pin]?.running = running }

    /// Removes the channel on `pin` (`pwm.close`, or `gpio.mode` on the pin).
    public func close(_ pin: Int) { channels[pin] = nil }

    func reboot() {
        channels = [:]
        frequency = 500
    }
}
