import NIOCore

/// The RTC behind `rtctime`, `sntp` and `cron` (more-modules spec §7): unset until
/// something sets it; then an offset on the device clock, running at (1 + rate/2³²) of
/// nominal. It never goes backwards: a time earlier than the current one (with
/// `sec ≠ 0`) is approached by running at 15/16 speed until the difference (capped at
/// 4294.967295 s) is absorbed. It keeps its time across `rtctime.dsleep` only.
public final class RealTimeClock {
    let clock: DeviceClock
    /// RTC microseconds at `anchor`; nil while unset.
    private var anchorMicros: Int64?
    private var anchor: NIODeadline
    /// Microseconds still to absorb by running slow.
    private var slew: Int64 = 0
    /// The rate correction (`rtctime.set`'s third value).
    public private(set) var rate: Int32 = 0

    init(clock: DeviceClock) {
        self.clock = clock
        anchor = clock.now
    }

    /// Whether the time has been set since the RTC was last cleared.
    public var isSet: Bool { anchorMicros != nil }

    /// Microseconds since the epoch, or nil while unset.
    public var microseconds: Int64? {
        guard let anchorMicros else { return nil }
        let elapsed = (clock.now - anchor).nanoseconds / 1000
        let scaled = elapsed + Int64((Double(elapsed) * Double(rate) / 4_294_967_296.0).rounded(.towardZero))
        let absorbed = min(scaled / 16, slew)
        return anchorMicros + scaled - absorbed
    }

    /// `(sec, usec)` now, `(0, 0)` while unset.
    public var time: (seconds: Int64, microseconds: Int64) {
        guard let now = microseconds else { return (0, 0) }
        return (now / 1_000_000, now % 1_000_000)
    }

    /// Sets the time (and the rate, if given). An earlier time than the RTC's with
    /// `seconds ≠ 0` is slewed to rather than jumped to.
    public func set(seconds: Int64, microseconds usec: Int64 = 0, rate newRate: Int32? = nil) {
        let target = seconds * 1_000_000 + usec
        let current = microseconds
        reanchor()
        if let newRate { rate = newRate }
        if let current, target < current, seconds != 0 {
            slew = min(current - target, 4_294_967_295)
            anchorMicros = current
            // Approach the target: remember how far ahead we run.
            return
        }
        slew = 0
        anchorMicros = target
    }

    /// Sets only the rate (3.0's `rtctime.set()` without seconds).
    public func setRate(_ newRate: Int32) {
        reanchor()
        rate = newRate
    }

    /// Forgets the time (`rtctime.get()` → 0, 0, 0 again).
    public func clear() {
        anchorMicros = nil
        slew = 0
        rate = 0
        anchor = clock.now
    }

    private func reanchor() {
        if let now = microseconds {
            let elapsed = (clock.now - anchor).nanoseconds / 1000
            let scaled = elapsed + Int64((Double(elapsed) * Double(rate) / 4_294_967_296.0).rounded(.towardZero))
            slew -= min(scaled / 16, slew)
            anchorMicros = now
        }
        anchor = clock.now
    }

    func reboot(keepingTime: Bool) {
        if !keepingTime { clear() }
    }
}
