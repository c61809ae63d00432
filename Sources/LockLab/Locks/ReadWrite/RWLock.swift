// rwlock: the centralised reader-count reader-writer lock with writer preference, as Concurrency
// Kit writes it (include/ck_rwlock.h, ck_rwlock_write_lock / ck_rwlock_read_lock).
//
// Idea: one writer flag and one reader count, side by side on one line. A writer sets the flag
// (exchange), then waits for the count to drain; a reader waits for the flag to clear, counts
// itself in, and backs out if a writer set the flag meanwhile (writer preference: a waiting writer
// turns new readers away). Every reader writes the one shared line, so reads do not scale: the
// classic result the per-thread indicators of brlock and bravo fix.
// Invariants: writer == 1 iff a writer holds or is draining readers; a reader holds the read side
// iff it counted itself in and then read writer == 0; the count is the readers counted in (some
// only about to back out).

import CShims

public struct RWLock: ReaderWriterLock {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "rwlock", family: .readerWriter, waiting: .spin,
        paper: "Concurrency Kit ck_rwlock (centralised reader count, writer preference)",
        supportsTryLock: true)

    /// The writer flag (0 or 1) and, in the next word of the same line, the reader count.
    @usableFromInline let writer: UnsafeMutablePointer<UInt32>
    @usableFromInline let readers: UnsafeMutablePointer<UInt32>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        writer = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 2)
        readers = writer + 1
    }

    @inline(__always)
    public func lock(_ context: inout NoContext) {
        // Seq-cst exchange and load: the flag is set before the reader count is read (a store-load
        // order on two words, which acq_rel does not give; ck's ck_pr_fence_atomic_load after its
        // fas). With the reader's seq-cst increment and load, one of the two sees the other.
        // (On x86 all are what acq_rel compiles to: a locked RMW and a plain load.)
        while cshims_u32_exchange_seq_cst(writer, 1) != 0 {
            cshims_pause()
        }
        // Seq-cst (so also acquire): the readers' critical sections come before ours.
        while cshims_u32_load_seq_cst(readers) != 0 {
            cshims_pause()
        }
    }

    @inline(__always)
    public func tryLock(_ context: inout NoContext) -> Bool {
        // ck_rwlock_write_trylock: take the flag, give it back if a reader is in.
        guard cshims_u32_load_relaxed(writer) == 0, cshims_u32_exchange_seq_cst(writer, 1) == 0 else { return false }
        if cshims_u32_load_seq_cst(readers) != 0 {
            cshims_u32_store_release(writer, 0)
            return false
        }
        return true
    }

    @inline(__always)
    public func unlock(_ context: inout NoContext) {
        // Release: the critical section's stores are visible before the flag reads clear.
        cshims_u32_store_release(writer, 0)
    }

    @inline(__always)
    public func readLock(_ context: inout NoContext) {
        // Count in on the shared count unless the flag is set (ck's ck_pr_fence_atomic_load).
        enterReadSide(readers, unlessWriter: writer)
    }

    @inline(__always)
    public func readUnlock(_ context: inout NoContext) {
        // Release: our reads are done before a writer sees the count drop.
        _ = cshims_u32_fetch_sub_release(readers, 1)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(writer), bytes: LabMemory.alignment)
    }
}
