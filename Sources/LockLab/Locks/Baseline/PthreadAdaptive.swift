// pthread-adaptive: glibc's PTHREAD_MUTEX_ADAPTIVE_NP mutex (spin a while, then sleep).
//
// Paper: none; glibc nptl (pthread_mutex_lock.c, the PTHREAD_MUTEX_ADAPTIVE_NP case).
// Idea: the default futex mutex, except that a contended locker first spins (pause, read the word,
// trylock when it looks free) for up to min(glibc.pthread.mutex_spin_count (tunable, default 100),
// 2 x the mutex's moving average of past spin counts + 10) rounds before it sleeps in FUTEX_WAIT.
// Invariants: glibc's; the mutex lives in its own 128-byte block and is destroyed last.

import Glibc

public struct PthreadAdaptiveLock: LockAlgorithm {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "pthread-adaptive", family: .baseline, waiting: .spinThenPark,
        paper: "glibc nptl PTHREAD_MUTEX_ADAPTIVE_NP",
        supportsTryLock: true)

    @usableFromInline let mutex: PthreadMutexWord

    public init(_ environment: LockEnvironment) throws {
        // PTHREAD_MUTEX_ADAPTIVE_NP (3) imports from Glibc as an Int constant.
        mutex = try PthreadMutexWord(memory: environment.memory, type: Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
    }

    @inline(__always) public func lock(_ context: inout NoContext) { mutex.lock() }
    @inline(__always) public func tryLock(_ context: inout NoContext) -> Bool { mutex.tryLock() }
    @inline(__always) public func unlock(_ context: inout NoContext) { mutex.unlock() }
    public func deallocate() { mutex.deallocate() }
}
