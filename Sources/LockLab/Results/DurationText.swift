// Durations for people: the sweep's ETA ("3m05s", "1h02m").

import Foundation

public enum DurationText {
    /// "42s", "3m05s", "1h02m". An estimate can be anything (a first run that took no time, a
    /// matrix of a day's runs): a value that is not finite or negative is "?", one beyond 30 years
    /// says so; neither reaches the Int conversion, which would trap.
    public static func format(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        guard seconds < 1e9 else { return ">30 years" }
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" }
        if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
        return "\(s)s"
    }
}
