// backoff: test-and-test-and-set with bounded exponential backoff.
//
// Paper: T. E. Anderson, "The Performance of Spin Lock Alternatives for Shared-Memory
// Multiprocessors", IEEE TPDS 1990 (with A. Agarwal, M. Cherian, ISCA 1989, for the delay choice).
// Idea: TTAS, but a thread whose exchange fails (it lost a race for a free lock, so the lock is
// contended) waits `delay` pause iterations before looking again, doubling `delay` up to a bound.
// Fewer threads rush the line at each release: no collapse, at the price of idle time at handover.
// Invariants: word == 1 iff some thread holds the lock; only the holder stores 0;
//             min-backoff <= delay <= max-backoff; delay is per acquisition, starting at min-backoff.
// Parameters: `min-backoff` (pause iterations, default 16), `max-backoff` (default 1024).
// The loop (`BackoffTTAS`, below) is shared with c-bo-mcs's global lock, which backs off where
// LiTL's does instead: while the word reads held (`BackoffTTAS.Rule`).

import CShims

public struct BackoffLock: LockAlgorithm {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "backoff", family: .spin, waiting: .spin,
        paper: "Anderson, IEEE TPDS 1990 (TTAS with exponential backoff)",
        supportsTryLock: true,
        options: [
            LockOptionSpec("min-backoff", default: 16, range: 1...(1 << 20),
                           help: "first backoff after a lost exchange, in pause iterations"),
            LockOptionSpec("max-backoff", default: 1024, range: 1...(1 << 24),
                           help: "bound of the doubling backoff, in pause iterations (>= min-backoff)"),
        ])

    /// The lock word, alone on its 128-byte block: 0 free, 1 held.
    @usableFromInline let word: UnsafeMutablePointer<UInt32>
    @usableFromInline let memory: LabMemory
    @usableFromInline let minBackoffPauses: UInt32
    @usableFromInline let maxBackoffPauses: UInt32

    public init(_ environment: LockEnvironment) throws {
        let minimum = environment.options.int("min-backoff")
        let maximum = environment.options.int("max-backoff")
        guard maximum >= minimum else {
            throw LockError.badOptionValue(lock: Self.descriptor.name, key: "max-backoff", value: "\(maximum)",
                                           accepted: "an integer >= min-backoff (\(minimum))")
        }
        minBackoffPauses = UInt32(minimum)
        maxBackoffPauses = UInt32(maximum)
        memory = environment.memory
        word = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 1)
    }

    @inline(__always)
    public func lock(_ context: inout NoContext) {
        BackoffTTAS.acquire(word, rule: .afterLostExchange, minPauses: minBackoffPauses, maxPauses: maxBackoffPauses)
    }

    @inline(__always)
    public func tryLock(_ context: inout NoContext) -> Bool {
        BackoffTTAS.tryAcquire(word)
    }

    @inline(__always)
    public func unlock(_ context: inout NoContext) {
        BackoffTTAS.release(word)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(word), bytes: LabMemory.alignment)
    }
}

/// The test-and-test-and-set loop with bounded exponential backoff on a 32-bit word (0 free,
/// 1 held), for `backoff` and c-bo-mcs's global lock. Delays are in `pause` iterations; each
/// acquisition starts at `minPauses` and doubles up to `maxPauses` (capped: the delays are
/// min, 2 min, 4 min, ..., max).
@usableFromInline
enum BackoffTTAS {
    /// When a waiter backs off.
    @usableFromInline
    enum Rule {
        /// After an exchange that lost the race for a free word (Anderson's; `backoff`): waiters
        /// spin on the line while it is held and rush it once, then the losers back off.
        case afterLostExchange
        /// While the word reads held, before each new look at it (LiTL's `__backoff_mutex_lock`,
        /// cbomcs.c:130-148, with ck's constants): a waiter reads the line once per delay.
        case whileHeld
    }

    @inline(__always)
    static func acquire(_ word: UnsafeMutablePointer<UInt32>, rule: Rule, minPauses: UInt32, maxPauses: UInt32) {
        var delay = minPauses
        while true {
            // Relaxed: only a hint that the exchange may succeed; the exchange does the ordering.
            while cshims_u32_load_relaxed(word) != 0 {
                if rule == .whileHeld {
                    pause(delay)
                    delay = nextDelay(delay, maxPauses: maxPauses)
                } else {
                    cshims_pause()
                }
            }
            // Acquire: the exchange that returns 0 orders the critical section after it.
            if cshims_u32_exchange_acquire(word, 1) == 0 { return }
            if rule == .afterLostExchange {
                // Lost the race for a free lock: back off before reading the line again.
                pause(delay)
                delay = nextDelay(delay, maxPauses: maxPauses)
            }
        }
    }

    /// The delay after `delay`: doubled, capped at `maxPauses`.
    @inline(__always)
    static func nextDelay(_ delay: UInt32, maxPauses: UInt32) -> UInt32 {
        Swift.min(delay &* 2, maxPauses)
    }

    @inline(__always)
    static func pause(_ iterations: UInt32) {
        for _ in 0..<iterations {
            cshims_pause()
        }
    }

    /// Test, then exchange: a failing trylock does not take the holder's line exclusive.
    @inline(__always)
    static func tryAcquire(_ word: UnsafeMutablePointer<UInt32>) -> Bool {
        // Acquire: the exchange that returns 0 orders the critical section after it.
        cshims_u32_load_relaxed(word) == 0 && cshims_u32_exchange_acquire(word, 1) == 0
    }

    @inline(__always)
    static func release(_ word: UnsafeMutablePointer<UInt32>) {
        // Release: the critical section's writes are visible before the word reads free.
        cshims_u32_store_release(word, 0)
    }
}
