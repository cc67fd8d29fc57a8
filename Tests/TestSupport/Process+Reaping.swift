import Foundation

extension Process {
    /// Whether the process has exited but nobody has reaped it yet.
    var isUnreapedZombie: Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    /// Reaps the process if it is a zombie; returns its status (128 + signal for a
    /// killed process, as a shell reports it), or nil if it could not be reaped.
    func reapZombie() -> Int32? {
        guard isUnreapedZombie else { return nil }
        var raw: Int32 = 0
        guard waitpid(processIdentifier, &raw, WNOHANG) == processIdentifier else { return nil }
        return raw & 0x7F == 0 ? (raw >> 8) & 0xFF : 128 + (raw & 0x7F)
    }

    /// `waitUntilExit()` that cannot hang: Foundation's exit monitoring was seen to miss
    /// a quick exit and leave a zombie it never reports. Polls; a zombie still there
    /// after a few polls (Foundation reaps within milliseconds when it works) is reaped
    /// here; after `timeout` the process is killed. Returns the exit status.
    public func waitForExit(timeout: TimeInterval = 60) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        var zombiePolls = 0
        var killed = false
        while isRunning {
            zombiePolls = isUnreapedZombie ? zombiePolls + 1 : 0
            if zombiePolls >= 5, let status = reapZombie() { return status }
            if !killed && Date() >= deadline {
                kill(processIdentifier, SIGKILL)
                killed = true
            }
            if killed && Date() >= deadline.addingTimeInterval(5) { return -1 }
            usleep(50_000)
        }
        return terminationStatus
    }
}
