// ck-pflock: Concurrency Kit's phase-fair reader-writer lock (ck_pflock), the C reference of
// `pf-ticket`.
//
// Paper: Brandenburg & Anderson, Real-Time Systems 2010 (PF-T), as include/ck_pflock.h writes it.
// Idea: writers take FIFO tickets and announce a write phase in the reader-entry counter's low
// bits; readers arriving during it wait for that one phase only: reads and writes alternate.
// Invariants: ck's; its four counters (16 bytes) are alone on a 128-byte block. ck offers no
// trylock for this lock.

import CCK

public struct CKPFLock: ReaderWriterLock {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "ck-pflock", family: .reference, waiting: .spin,
        paper: "Concurrency Kit ck_pflock (Brandenburg & Anderson phase-fair ticket lock)",
        supportsTryLock: false)

    @usableFromInline let pflock: UnsafeMutablePointer<ck_pflock_t>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        precondition(MemoryLayout<ck_pflock_t>.size <= LabMemory.alignment)
        memory = environment.memory
        pflock = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: ck_pflock_t.self, capacity: 1)
        ck_pflock_init(pflock)
    }

    // Orders: ck's own (ck_pr_fence_lock / ck_pr_fence_unlock).
    @inline(__always) public func lock(_ context: inout NoContext) { ck_pflock_write_lock(pflock) }
    @inline(__always) public func unlock(_ context: inout NoContext) { ck_pflock_write_unlock(pflock) }
    @inline(__always) public func readLock(_ context: inout NoContext) { ck_pflock_read_lock(pflock) }
    @inline(__always) public func readUnlock(_ context: inout NoContext) { ck_pflock_read_unlock(pflock) }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(pflock), bytes: LabMemory.alignment)
    }
}
