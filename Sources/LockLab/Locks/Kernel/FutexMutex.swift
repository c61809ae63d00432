// futex-mutex, futex-spin: Drepper's three-state futex mutex, without and with a bounded spin.
//
// Paper: U. Drepper, "Futexes Are Tricky", Red Hat, 2011 (version 1.6), mutex #3 ("mutex3"); the
// spin bound of futex-spin is glibc's for PTHREAD_MUTEX_ADAPTIVE_NP (tunable
// glibc.pthread.mutex_spin_count, default 100).
// Idea: one 32-bit word, 0 free, 1 locked, 2 locked with (possible) sleepers. Lock: CAS 0 -> 1; if
// that fails, mark the word 2 by exchange and sleep in FUTEX_WAIT(2) until an exchange to 2 returns
// 0 (the lock was free: we hold it, still marked 2, so our unlock wakes the next sleeper). Unlock:
// a fetch-and-subtract; from 1 nobody sleeps and it is free; from 2 store 0 and FUTEX_WAKE one.
// futex-spin first spins `spin-limit` iterations trying 0 -> 1 whenever it reads 0, then sleeps.
// Transitions (the word):
//   lock, free:            0 -> 1             CAS (acquire)
//   lock, busy:            1|2 -> 2           exchange; sleep while 2; retry the exchange
//   lock after sleeping:   0 -> 2             exchange returned 0: held, and marked contended
//   unlock, no sleeper:    1 -> 0             fetch_sub returned 1
//   unlock, sleepers:      2 -> 1 -> 0        fetch_sub returned 2; store 0; FUTEX_WAKE 1
//   tryLock:               0 -> 1             CAS
// Invariants:
//  - the word is 0 iff the lock is free; a thread sleeps in FUTEX_WAIT only while it reads 2, and
//    whoever finds 2 at unlock wakes one sleeper, so no sleeper is lost: a thread that went to
//    sleep did so after making the word 2, and the unlock that follows sees 2 (or a later one does);
//  - a woken thread retakes the lock by exchange to 2, never 1: it cannot know whether others still
//    sleep (Drepper's point: mutex #2 lost that information and could sleep forever).
// No FIFO order, no fairness bound: the kernel wakes one sleeper, which races with newcomers.
// Layout: the word alone in a 128-byte block.

import CShims

/// Whether a futex mutex spins before sleeping.
public protocol FutexSpinPhase {
    static var name: String { get }
    static var options: [LockOptionSpec] { get }
}

/// `futex-mutex`: sleep at once (Drepper's mutex #3 exactly).
public enum NoSpinPhase: FutexSpinPhase {
    public static var name: String { "futex-mutex" }
    public static var options: [LockOptionSpec] { [] }
}

/// `futex-spin`: spin a bounded number of iterations first.
public enum BoundedSpinPhase: FutexSpinPhase {
    public static var name: String { "futex-spin" }
    public static var options: [LockOptionSpec] {
        [LockOptionSpec("spin-limit", default: 100, range: 0...1_000_000,
                        help: "pause iterations trying 0 -> 1 before sleeping (glibc adaptive mutex: 100)")]
    }
}

public typealias FutexMutexLock = FutexMutex<NoSpinPhase>
public typealias FutexSpinLock = FutexMutex<BoundedSpinPhase>

public struct FutexMutex<Spin: FutexSpinPhase>: LockAlgorithm {
    public typealias Context = NoContext

    public static var descriptor: LockDescriptor {
        LockDescriptor(
            name: Spin.name, family: .kernel, waiting: Spin.options.isEmpty ? .park : .spinThenPark,
            paper: Spin.options.isEmpty ? "Drepper, \"Futexes Are Tricky\" 2011 (mutex #3)"
                : "Drepper, \"Futexes Are Tricky\" 2011 (mutex #3) + glibc adaptive spin (100)",
            supportsTryLock: true, options: Spin.options)
    }

    /// 0 free, 1 locked, 2 locked and possibly contended (sleepers).
    @usableFromInline let word: UnsafeMutablePointer<UInt32>
    @usableFromInline let spinLimit: Int
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        spinLimit = Spin.options.isEmpty ? 0 : environment.options.int("spin-limit")
        word = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 1)
    }

    @inline(__always)
    public func lock(_ context: inout NoContext) {
        // 0 -> 1. Acquire: pairs with the release of the unlock that freed the word.
        if cshims_u32_cas_value_acquire(word, 0, 1) { return }
        lockSlow()
    }

    @usableFromInline @inline(never)
    func lockSlow() {
        if spinLimit > 0 {
            // futex-spin: try 0 -> 1 whenever the word reads 0, for a bounded time.
            for _ in 0..<spinLimit {
                if cshims_u32_load_relaxed(word) == 0 && cshims_u32_cas_value_acquire(word, 0, 1) { return }
                cshims_pause()
            }
        }
        // Drepper's mutex3: if (c != 2) c = xchg(val, 2); while (c != 0) { wait(val, 2); c = xchg(val, 2); }
        var seen = cshims_u32_load_relaxed(word)
        if seen != 2 {
            // 0|1 -> 2. Acquire: if it returns 0 we hold the lock.
            seen = cshims_u32_exchange_acquire(word, 2)
        }
        while seen != 0 {
            // Sleeps only while the word still reads 2 (EAGAIN otherwise); EINTR and spurious
            // wake-ups land in the retry too.
            _ = cshims_futex_wait(word, 2)
            seen = cshims_u32_exchange_acquire(word, 2)
        }
    }

    @inline(__always)
    public func tryLock(_ context: inout NoContext) -> Bool {
        cshims_u32_cas_value_acquire(word, 0, 1)
    }

    @inline(__always)
    public func unlock(_ context: inout NoContext) {
        // 1 -> 0, or 2 -> 1. Release: the critical section happens-before the next acquire.
        if cshims_u32_fetch_sub_release(word, 1) != 1 {
            unlockSlow()
        }
    }

    @usableFromInline @inline(never)
    func unlockSlow() {
        // 1 -> 0 (it was 2: sleepers may exist). Release, as the fetch_sub: a thread that takes
        // the lock by reading this 0 acquires our critical section.
        cshims_u32_store_release(word, 0)
        _ = cshims_futex_wake(word, 1)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(word), bytes: LabMemory.alignment)
    }
}
