// pthread-spin: glibc's pthread_spinlock_t.
//
// Paper: none; glibc nptl (pthread_spin_lock.c), a test-and-test-and-set lock.
// Idea: one int; lock is one atomic read-modify-write, and while it fails, spin reading the word
// with a pause until it looks free (x86-64 glibc 2.36: `lock decl` on a word where 1 means free,
// then `pause; cmpl $0` until it is positive again). Never sleeps, no FIFO order.
// Invariants: glibc's encoding (x86-64: 1 free, <= 0 held); the word is alone on its 128-byte block.

import Glibc

public struct PthreadSpinLock: LockAlgorithm {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "pthread-spin", family: .baseline, waiting: .spin,
        paper: "glibc nptl pthread_spinlock_t (TTAS)",
        supportsTryLock: true)

    @usableFromInline let spin: UnsafeMutablePointer<pthread_spinlock_t>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) throws {
        memory = environment.memory
        spin = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: pthread_spinlock_t.self, capacity: 1)
        let rc = pthread_spin_init(spin, Int32(PTHREAD_PROCESS_PRIVATE))
        if rc != 0 {
            memory.deallocate(UnsafeMutableRawPointer(spin), bytes: LabMemory.alignment)
            throw LockError.unsupported("pthread_spin_init failed: \(String(cString: strerror(rc)))")
        }
    }

    @inline(__always)
    public func lock(_ context: inout NoContext) {
        // glibc's pthread_spin_lock always returns 0.
        let rc = pthread_spin_lock(spin)
        if rc != 0 { pthreadFailure("pthread_spin_lock", rc) }
    }

    @inline(__always)
    public func tryLock(_ context: inout NoContext) -> Bool {
        let rc = pthread_spin_trylock(spin)
        if rc == 0 { return true }
        if rc != EBUSY { pthreadFailure("pthread_spin_trylock", rc) }
        return false
    }

    @inline(__always)
    public func unlock(_ context: inout NoContext) {
        let rc = pthread_spin_unlock(spin)
        if rc != 0 { pthreadFailure("pthread_spin_unlock", rc) }
    }

    public func deallocate() {
        _ = pthread_spin_destroy(spin)
        memory.deallocate(UnsafeMutableRawPointer(spin), bytes: LabMemory.alignment)
    }
}
