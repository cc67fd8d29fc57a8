#if canImport(Glibc)
import Glibc
#endif

/// The host's wall clock, read only where the simulation is defined to answer from it
/// (`sntp`, `rtc = now` in a board file); everything else runs on `DeviceClock`.
public enum HostClock {
    /// Seconds and microseconds since the Unix epoch.
    public static var epoch: (seconds: Int64, microseconds: Int64) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return (Int64(now.tv_sec), Int64(now.tv_nsec) / 1000)
    }

    public static var epochSeconds: Int64 { epoch.seconds }
}
