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

    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) throws {
        precondition(MemoryLayout<pthread_mutex_t>.size <= LabMemory.alignment)
        memory = environment.memory
        mutex = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: pthread_mutex_t.self, capacity: 1)
        var attr = pthread_mutexattr_t()
        var rc = pthread_mutexattr_init(&attr)
        if rc == 0 {
            // PTHREAD_MUTEX_ADAPTIVE_NP (3) imports from Glibc as an Int constant.
            rc = pthread_mutexattr_settype(&attr, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
            if rc == 0 { rc = pthread_mutex_init(mutex, &attr) }
            pthread_mutexattr_destroy(&attr)
        }
        if rc != 0 {
            memory.deallocate(UnsafeMutableRawPointer(mutex), bytes: LabMemory.alignment)
            throw LockError.unsupported("adaptive pthread mutex: \(String(cString: strerror(rc)))")
        }
    }

    @inline(__always)
    public func lock(_ context: inout NoContext) {
        let rc = pthread_mutex_lock(mutex)
        if rc != 0 { pthreadFailure("pthread_mutex_lock", rc) }
    }

    @inline(__always)
    public func tryLock(_ context: inout NoContext) -> Bool {
        // An adaptive mutex has no owner checks: EBUSY whenever it is held.
        let rc = pthread_mutex_trylock(mutex)
        if rc == 0 { return true }
        if rc != EBUSY { pthreadFailure("pthread_mutex_trylock", rc) }
        return false
    }

    @inline(__always)
    public func unlock(_ context: inout NoContext) {
        let rc = pthread_mutex_unlock(mutex)
        if rc != 0 { pthreadFailure("pthread_mutex_unlock", rc) }
    }

    public func deallocate() {
        _ = pthread_mutex_destroy(mutex)
        memory.deallocate(UnsafeMutableRawPointer(mutex), bytes: LabMemory.alignment)
    }
}
