// Waiting policies: how a queue lock's waiter waits for the word that grants it the lock.
//
// Source: H. Guiroux, R. Lachaize, V. Quéma, "Multicore Locks: the Case is Not Closed Yet", USENIX
// ATC 2016 (LiTL), which ships every queue lock as a spinning and a spin-then-park ("-stp") variant;
// the futex protocol follows U. Drepper, "Futexes Are Tricky" (2011).
// Idea: a queue lock says *what* it waits for (its node's word leaving the "waiting" value) and
// *who* grants it (one store by the releaser); the policy says *how*. `SpinWaiting` spins with
// `pause`; `SpinThenParkWaiting` spins a bounded number of iterations (option `spin-limit`, LiTL's
// 2700 by default), then marks the word parked (a CAS from the waiting value to `parkedMark`)
// and sleeps in FUTEX_WAIT on it; the granter's
// store becomes an exchange, which reads the mark if the waiter parked first, and only then does it
// make the FUTEX_WAKE syscall. The policy is a type parameter of the lock, so `mcs` and `mcs-stp`
// are the same algorithm file compiled into two specialised loops.
// Invariants:
//  - only the waiter writes `parkedMark`, only from the waiting value, by CAS; only the granter
//    writes the granted value, by an exchange (stp) or a store (spin). Both are operations on one
//    word, so they are totally ordered: either the CAS fails (granted first: the waiter never
//    sleeps) or the exchange returns the mark (parked first: the granter wakes). No lost wake-up;
//  - FUTEX_WAIT sleeps only while the word still reads the mark, so a wake that comes before the
//    waiter is asleep is not lost either (the kernel's compare fails and the wait returns);
//  - a granted value never equals `parkedMark` (in the low 32 bits, for 64-bit words): the locks
//    grant 0 or 1, or a 128-byte aligned node address;
//  - the waiter may return (and free its node) between the granter's exchange and its FUTEX_WAKE:
//    the wake then hits no sleeper, or a later waiter on reused memory, which rechecks its word and
//    sleeps again (every wait here loops), as glibc's mutex allows for the same reason.
// 64-bit words (cna's `spin`) park on their low 32 bits (futexes are 32-bit): little-endian only.

import CShims

#if !_endian(little)
#error("spin-then-park parks on the low 32 bits of 64-bit words: little-endian only")
#endif

/// How a queue lock's waiter waits: a type parameter of the lock (`MCS<SpinThenParkWaiting>` is
/// `mcs-stp`), so each variant compiles into its own loop.
public protocol WaitingPolicy {
    /// What `locklab list` shows.
    static var kind: WaitingKind { get }
    /// Appended to the algorithm's name (LiTL's naming): "" or "-stp".
    static var nameSuffix: String { get }
    /// Options every lock with this policy adds to its own (spin-then-park: `spin-limit`).
    static var options: [LockOptionSpec] { get }

    /// Waits while `*word` reads `waiting` (or this policy's parked mark); returns the value that
    /// ended the wait, read with acquire (pairs with the granter's release). `spinLimit`: pause
    /// iterations before parking (ignored by policies that do not park).
    static func wait(on word: UnsafeMutablePointer<UInt32>, while waiting: UInt32, spinLimit: Int) -> UInt32
    /// The same for a 64-bit word (parks on its low 32 bits).
    static func wait(on word: UnsafeMutablePointer<UInt64>, while waiting: UInt64, spinLimit: Int) -> UInt64

    /// Writes `value` with release into a word a waiter may wait on, waking it if it parked.
    static func grant(_ word: UnsafeMutablePointer<UInt32>, _ value: UInt32)
    /// The same for a 64-bit word.
    static func grant(_ word: UnsafeMutablePointer<UInt64>, _ value: UInt64)
}

extension WaitingPolicy {
    /// `wait` with LiTL's spin bound (`SpinThenParkWaiting.defaultSpinLimit`).
    @inline(__always)
    public static func wait(on word: UnsafeMutablePointer<UInt32>, while waiting: UInt32) -> UInt32 {
        wait(on: word, while: waiting, spinLimit: SpinThenParkWaiting.defaultSpinLimit)
    }

    @inline(__always)
    public static func wait(on word: UnsafeMutablePointer<UInt64>, while waiting: UInt64) -> UInt64 {
        wait(on: word, while: waiting, spinLimit: SpinThenParkWaiting.defaultSpinLimit)
    }

    /// The lock's spin bound: its `spin-limit` option where the policy has one, else 0.
    public static func spinLimit(_ options: LockOptions) -> Int {
        self.options.isEmpty ? 0 : options.int("spin-limit")
    }
}

/// Spin with `pause` until granted (every lock's policy before spin-then-park existed).
public enum SpinWaiting: WaitingPolicy {
    public static var kind: WaitingKind { .spin }
    public static var nameSuffix: String { "" }
    public static var options: [LockOptionSpec] { [] }

    @inline(__always)
    public static func wait(on word: UnsafeMutablePointer<UInt32>, while waiting: UInt32, spinLimit: Int) -> UInt32 {
        while true {
            // Acquire: pairs with the granter's release store.
            let value = cshims_u32_load_acquire(word)
            if value != waiting { return value }
            cshims_pause()
        }
    }

    @inline(__always)
    public static func wait(on word: UnsafeMutablePointer<UInt64>, while waiting: UInt64, spinLimit: Int) -> UInt64 {
        while true {
            let value = cshims_u64_load_acquire(word)
            if value != waiting { return value }
            cshims_pause()
        }
    }

    @inline(__always)
    public static func grant(_ word: UnsafeMutablePointer<UInt32>, _ value: UInt32) {
        // Release: the critical section happens-before the waiter's acquire load.
        cshims_u32_store_release(word, value)
    }

    @inline(__always)
    public static func grant(_ word: UnsafeMutablePointer<UInt64>, _ value: UInt64) {
        cshims_u64_store_release(word, value)
    }
}

/// Spin `spinLimit` iterations, then sleep on a futex in the waiter's own word (LiTL's
/// spin-then-park); the granter wakes the waiter only if it parked.
public enum SpinThenParkWaiting: WaitingPolicy {
    public static var kind: WaitingKind { .spinThenPark }
    public static var nameSuffix: String { "-stp" }

    /// Pause iterations before parking, by default: LiTL's figure (SPINNING_THRESHOLD 2700 in its
    /// waiting_policy.h), meant as about the cost of a context switch. Measured on this lab's 2-vCPU
    /// Xeon VM: a `pause` takes ~28 ns, so 2700 spin ~75 us, while a futex hand-off to a thread on
    /// the same CPU (wake + switch) costs ~1.5-2 us and to an idle other CPU ~15 us.
    public static let defaultSpinLimit = 2700

    public static var options: [LockOptionSpec] {
        [LockOptionSpec("spin-limit", default: defaultSpinLimit, range: 0...1_000_000,
                        help: "pause iterations a waiter spins before it parks (LiTL: 2700; 0: park at once)")]
    }

    /// The value a parked waiter leaves in its word (low 32 bits for 64-bit words).
    public static let parkedMark: UInt32 = 2

    @inline(__always)
    public static func wait(on word: UnsafeMutablePointer<UInt32>, while waiting: UInt32, spinLimit: Int) -> UInt32 {
        var spins = spinLimit
        while true {
            let value = cshims_u32_load_acquire(word)
            if value != waiting { return value }
            if spins == 0 { return park(word, waiting: waiting) }
            spins &-= 1
            cshims_pause()
        }
    }

    @inline(__always)
    public static func wait(on word: UnsafeMutablePointer<UInt64>, while waiting: UInt64, spinLimit: Int) -> UInt64 {
        var spins = spinLimit
        while true {
            let value = cshims_u64_load_acquire(word)
            if value != waiting { return value }
            if spins == 0 { return park(word, waiting: waiting) }
            spins &-= 1
            cshims_pause()
        }
    }

    /// waiting -> parked, then FUTEX_WAIT until the word holds something else.
    @usableFromInline @inline(never)
    static func park(_ word: UnsafeMutablePointer<UInt32>, waiting: UInt32) -> UInt32 {
        // Relaxed: the mark publishes nothing; the acquire is on the load that sees the grant.
        if !cshims_u32_cas_value_relaxed(word, waiting, parkedMark) {
            // Granted between our last load and the CAS.
            return cshims_u32_load_acquire(word)
        }
        while true {
            // Returns 0 (woken, perhaps spuriously), EAGAIN (the word no longer reads the mark)
            // or EINTR: each case rechecks the word.
            _ = cshims_futex_wait(word, parkedMark)
            let value = cshims_u32_load_acquire(word)
            if value != parkedMark { return value }
        }
    }

    @usableFromInline @inline(never)
    static func park(_ word: UnsafeMutablePointer<UInt64>, waiting: UInt64) -> UInt64 {
        if !cshims_u64_cas_value_relaxed(word, waiting, UInt64(parkedMark)) {
            return cshims_u64_load_acquire(word)
        }
        let low = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self)
        while true {
            _ = cshims_futex_wait(low, parkedMark)
            let value = cshims_u64_load_acquire(word)
            if value != UInt64(parkedMark) { return value }
        }
    }

    @inline(__always)
    public static func grant(_ word: UnsafeMutablePointer<UInt32>, _ value: UInt32) {
        // Release (the critical section before the waiter's acquire), and an exchange so that it
        // reads the mark if the waiter's CAS came first.
        if cshims_u32_exchange_release(word, value) == parkedMark {
            _ = cshims_futex_wake(word, 1)
        }
    }

    @inline(__always)
    public static func grant(_ word: UnsafeMutablePointer<UInt64>, _ value: UInt64) {
        if cshims_u64_exchange_release(word, value) == UInt64(parkedMark) {
            _ = cshims_futex_wake(UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self), 1)
        }
    }
}
