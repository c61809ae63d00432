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

    /// Counter ticks in `nanoseconds` (0 for <= 0). Saturates at `UInt64.max`: a time beyond the
    /// counter's range (Int.max ns at a few ticks/ns is more than 2^64 ticks) means "never", and
    /// must not trap the process in the Double -> UInt64 conversion (issue 10, section 4).
    public static func cycles(nanoseconds: Int) -> UInt64 {
        cycles(nanoseconds: nanoseconds, cyclesPerNanosecond: cyclesPerNanosecond)
    }

    /// The conversion with an explicit rate, so that tests can try the rates of other machines.
    /// A rate that is not a positive finite number gives 0 ticks for 0 ns and `UInt64.max` otherwise.
    public static func cycles(nanoseconds: Int, cyclesPerNanosecond rate: Double) -> UInt64 {
        guard nanoseconds > 0 else { return 0 }
        let ticks = (Double(nanoseconds) * rate).rounded()
        // `!(ticks < 2^64)` is also true for NaN; a negative rate gives a negative count.
        guard ticks < 0x1p64 else { return .max }
        return ticks > 0 ? UInt64(ticks) : (rate > 0 ? 0 : .max)
    }

    public static func nanoseconds(cycles: UInt64) -> Double {
        Double(cycles) / cyclesPerNanosecond
    }

    public static func monotonicNanoseconds() -> UInt64 { cshims_monotonic_ns() }
}
