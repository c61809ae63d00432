// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014):
// the lab's seeded generator. Swift's default generator is not seedable; every seeded stream of the
// lab (sweep order, torture mixes, workload operation generators) comes from this one.

/// A small, fixed, seedable generator: a Weyl sequence (state += golden gamma) through a 64-bit mixer.
public struct SplitMix64: RandomNumberGenerator {
    @usableFromInline var state: UInt64

    @inlinable
    public init(seed: UInt64) { state = seed }

    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// The finaliser alone: a well-mixed 64-bit value of `z` (neighbouring inputs, unrelated outputs).
    @inlinable
    public static func mix(_ z: UInt64) -> UInt64 {
        var z = z
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A stream for thread `index` of a run seeded with `seed`: streams of neighbouring threads are
    /// unrelated, and the state is never zero.
    @inlinable
    public static func seed(_ seed: UInt64, thread index: Int) -> UInt64 {
        mix(seed &+ UInt64(truncatingIfNeeded: index + 1) &* 0x9E37_79B9_7F4A_7C15) | 1
    }
}
