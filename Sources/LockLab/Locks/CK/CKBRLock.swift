// ck-brlock: Concurrency Kit's big-reader lock (ck_brlock), the C reference of `brlock`.
//
// Source: include/ck_brlock.h. Idea: each reader thread registers a `ck_brlock_reader` (its own
// indicator) in the lock's list; a reader touches only its indicator, a writer sets the writer
// flag and sweeps every registered indicator until it drains.
// Invariants: ck's; the lock is alone on its 128-byte block and so is each thread's reader record
// (ck's record is not padded: the lab pads it, as a ck user would, or readers would share lines).
// Threads register in `makeContext` (ck takes the write side to do it) and unregister in
// `freeContext`. Write trylock gives readers one spin (ck's `factor` 1).

import CCK

public struct CKBRLock: ReaderWriterLock {
    /// This thread's registered reader record.
    public typealias Context = UnsafeMutablePointer<ck_brlock_reader_t>

    public static let descriptor = LockDescriptor(
        name: "ck-brlock", family: .reference, waiting: .spin,
        paper: "Concurrency Kit ck_brlock (big-reader lock: per-reader indicators)",
        supportsTryLock: true)

    @usableFromInline let brlock: UnsafeMutablePointer<ck_brlock_t>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        precondition(MemoryLayout<ck_brlock_t>.size <= LabMemory.alignment)
        precondition(cck_brlock_reader_size() <= LabMemory.alignment)
        memory = environment.memory
        brlock = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: ck_brlock_t.self, capacity: 1)
        ck_brlock_init(brlock)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        let reader = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: ck_brlock_reader_t.self, capacity: 1)
        ck_brlock_read_register(brlock, reader)
        return reader
    }

    public func freeContext(_ context: inout Context) {
        ck_brlock_read_unregister(brlock, context)
        memory.deallocate(UnsafeMutableRawPointer(context), bytes: LabMemory.alignment)
    }

    // Orders: ck's own (ck_pr_fence_atomic_load after the flag, ck_pr_fence_lock / _unlock).
    @inline(__always) public func lock(_ context: inout Context) { ck_brlock_write_lock(brlock) }
    @inline(__always) public func tryLock(_ context: inout Context) -> Bool { ck_brlock_write_trylock(brlock, 1) }
    @inline(__always) public func unlock(_ context: inout Context) { ck_brlock_write_unlock(brlock) }
    @inline(__always) public func readLock(_ context: inout Context) { ck_brlock_read_lock(brlock, context) }
    @inline(__always) public func readUnlock(_ context: inout Context) { ck_brlock_read_unlock(context) }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(brlock), bytes: LabMemory.alignment)
    }
}
