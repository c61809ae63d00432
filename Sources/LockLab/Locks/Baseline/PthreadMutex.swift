// pthread-mutex: glibc's default mutex, the yardstick a C programmer reaches for.
//
// Paper: none; glibc nptl (pthread_mutex_lock.c), on the futex protocol of U. Drepper, "Futexes Are
// Tricky" (2011), mutex #2/#3: 0 free, 1 held, 2 held with possible sleepers.
// Idea: an uncontended lock is one `lock cmpxchg`; a contended one sleeps in FUTEX_WAIT and the
// releaser, seeing state 2, makes a FUTEX_WAKE syscall. No spinning, no FIFO order.
// Invariants: glibc's; the mutex lives in a 128-byte block of its own, initialised with a default
// attribute (PTHREAD_MUTEX_NORMAL semantics: trylock on a held mutex returns EBUSY even to the
// owner), and is destroyed only after every thread is done with it.

import Glibc

public struct PthreadMutexLock: LockAlgorithm {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "pthread-mutex", family: .baseline, waiting: .park,
        paper: "glibc nptl default mutex (Drepper, \"Futexes Are Tricky\", 2011)",
        supportsTryLock: true)

    @usableFromInline let mutex: PthreadMutexWord

    public init(_ environment: LockEnvironment) throws {
        // A nil attribute is the default type (PTHREAD_MUTEX_DEFAULT, which glibc maps to NORMAL).
        mutex = try PthreadMutexWord(memory: environment.memory, type: nil)
    }

    @inline(__always) public func lock(_ context: inout NoContext) { mutex.lock() }
    @inline(__always) public func tryLock(_ context: inout NoContext) -> Bool { mutex.tryLock() }
    @inline(__always) public func unlock(_ context: inout NoContext) { mutex.unlock() }
    public func deallocate() { mutex.deallocate() }
}

/// A pthread_mutex_t (40 bytes on x86-64 glibc) alone on its 128-byte block, of a given type;
/// shared by pthread-mutex and pthread-adaptive, which differ only in the type.
@usableFromInline
struct PthreadMutexWord {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    let memory: LabMemory

    init(memory: LabMemory, type: Int32?) throws {
        precondition(MemoryLayout<pthread_mutex_t>.size <= LabMemory.alignment)
        self.memory = memory
        mutex = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: pthread_mutex_t.self, capacity: 1)
        var rc: Int32
        if let type {
            var attr = pthread_mutexattr_t()
            rc = pthread_mutexattr_init(&attr)
            if rc == 0 {
                rc = pthread_mutexattr_settype(&attr, type)
                if rc == 0 { rc = pthread_mutex_init(mutex, &attr) }
                pthread_mutexattr_destroy(&attr)
            }
        } else {
            rc = pthread_mutex_init(mutex, nil)
        }
        if rc != 0 {
            memory.deallocate(UnsafeMutableRawPointer(mutex), bytes: LabMemory.alignment)
            throw LockError.unsupported("pthread_mutex_init (type \(type.map(String.init) ?? "default")) failed: \(String(cString: strerror(rc)))")
        }
    }

    @inline(__always)
    func lock() {
        // glibc's lock is an acquire operation; the return code of these types is always 0
        // (no error checking type, no robust list), so anything else is a broken lab.
        let rc = pthread_mutex_lock(mutex)
        if rc != 0 { pthreadFailure("pthread_mutex_lock", rc) }
    }

    @inline(__always)
    func tryLock() -> Bool {
        // 0: acquired; EBUSY: held (by anyone, the caller included: no owner checks).
        let rc = pthread_mutex_trylock(mutex)
        if rc == 0 { return true }
        if rc != EBUSY { pthreadFailure("pthread_mutex_trylock", rc) }
        return false
    }

    @inline(__always)
    func unlock() {
        // Release semantics are glibc's; wakes one sleeper if the word said 2.
        let rc = pthread_mutex_unlock(mutex)
        if rc != 0 { pthreadFailure("pthread_mutex_unlock", rc) }
    }

    func deallocate() {
        // EBUSY here would mean a thread still holds the mutex: a harness bug, not worth a crash.
        _ = pthread_mutex_destroy(mutex)
        memory.deallocate(UnsafeMutableRawPointer(mutex), bytes: LabMemory.alignment)
    }
}

/// Out of line so that the lock paths stay small: a pthread call that "cannot fail" did.
@usableFromInline @inline(never)
func pthreadFailure(_ call: StaticString, _ rc: Int32) -> Never {
    fatalError("\(call) returned \(rc) (\(String(cString: strerror(rc))))")
}
