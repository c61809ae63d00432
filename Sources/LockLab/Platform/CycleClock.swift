// The cycle counter and its calibration to nanoseconds.
//
// The hot loop reads the raw counter (rdtsc: no syscall, no fence); everything it records is in
// cycles and is converted once, at the end of a run, with the factor measured here.

import CShims

public enum CycleClock {
    /// Counter ticks per nanosecond, measured once per process against CLOCK_MONOTONIC (50 ms).
    public static let cyclesPerNanosecond: Double = {
        // Two calibrations, keep the later: the first can include a frequency ramp-up.
        _ = cshims_calibrate_cycles_per_ns(10)
        return cshims_calibrate_cycles_per_ns(50)
    }()

    @inline(__always)
    public static func now() -> UInt64 { cshims_cycles() }

    public static func cycles(nanoseconds: Int) -> UInt64 {
        nanoseconds <= 0 ? 0 : UInt64((Double(nanoseconds) * cyclesPerNanosecond).rounded())
    }

    public static func nanoseconds(cycles: UInt64) -> Double {
        Double(cycles) / cyclesPerNanosecond
    }

    public static func monotonicNanoseconds() -> UInt64 { cshims_monotonic_ns() }
}
