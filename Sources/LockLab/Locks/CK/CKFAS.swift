// ck-fas: Concurrency Kit's fetch-and-store spin lock (ck_spinlock_fas), the C reference.
//
// Paper: the folklore test-and-set lock as ck writes it (include/spinlock/fas.h); see
// T. E. Anderson, IEEE TPDS 1990.
// Idea: exchange 1 into the word; on failure spin reading it until it looks free, then exchange
// again (exchange-first TTAS). Release is a store of 0 after ck_pr_fence_unlock.
// Invariants: ck's; the ck_spinlock_fas_t is alone on its 128-byte block. ck's functions are static
// inline, so Swift inlines them: this is the same machine code a C benchmark would run.

import CCK

public struct CKFASLock: LockAlgorithm {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "ck-fas", family: .reference, waiting: .spin,
        paper: "Concurrency Kit ck_spinlock_fas (test-and-set)",
        supportsTryLock: true)

    @usableFromInline let spinlock: UnsafeMutablePointer<ck_spinlock_fas_t>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        precondition(MemoryLayout<ck_spinlock_fas_t>.size <= LabMemory.alignment)
        memory = environment.memory
        spinlock = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: ck_spinlock_fas_t.self, capacity: 1)
        cck_fas_init(spinlock)
    }

    // Orders: ck's own (ck_pr_fence_lock after the exchange, ck_pr_fence_unlock before the store).
    @inline(__always)
    public func lock(_ context: inout NoContext) {
        ck_spinlock_fas_lock(spinlock)
    }

    @inline(__always)
    public func tryLock(_ context: inout NoContext) -> Bool {
        ck_spinlock_fas_trylock(spinlock)
    }

    @inline(__always)
    public func unlock(_ context: inout NoContext) {
        ck_spinlock_fas_unlock(spinlock)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(spinlock), bytes: LabMemory.alignment)
    }
}
