// ck-rwlock: Concurrency Kit's centralised reader-writer lock (ck_rwlock), the C reference of
// `rwlock`.
//
// Source: include/ck_rwlock.h. Idea: a writer flag and a reader count side by side; a writer sets
// the flag and waits for the count to drain, a reader counts itself in and backs out if a writer
// set the flag meanwhile (writer preference). Every reader writes the one line: reads do not scale.
// Invariants: ck's; the lock (8 bytes) is alone on its 128-byte block.

import CCK

public struct CKRWLock: ReaderWriterLock {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "ck-rwlock", family: .reference, waiting: .spin,
        paper: "Concurrency Kit ck_rwlock (centralised reader count, writer preference)",
        supportsTryLock: true)

    @usableFromInline let rwlock: UnsafeMutablePointer<ck_rwlock_t>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        precondition(MemoryLayout<ck_rwlock_t>.size <= LabMemory.alignment)
        memory = environment.memory
        rwlock = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: ck_rwlock_t.self, capacity: 1)
        ck_rwlock_init(rwlock)
    }

    // Orders: ck's own (ck_pr_fence_atomic_load after the flag, ck_pr_fence_lock / _unlock).
    @inline(__always) public func lock(_ context: inout NoContext) { ck_rwlock_write_lock(rwlock) }
    @inline(__always) public func tryLock(_ context: inout NoContext) -> Bool { ck_rwlock_write_trylock(rwlock) }
    @inline(__always) public func unlock(_ context: inout NoContext) { ck_rwlock_write_unlock(rwlock) }
    @inline(__always) public func readLock(_ context: inout NoContext) { ck_rwlock_read_lock(rwlock) }
    @inline(__always) public func readUnlock(_ context: inout NoContext) { ck_rwlock_read_unlock(rwlock) }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(rwlock), bytes: LabMemory.alignment)
    }
}
