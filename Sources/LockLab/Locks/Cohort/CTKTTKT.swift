// c-tkt-tkt: lock cohorting with a global ticket lock and a ticket lock per NUMA node.
//
// Paper: D. Dice, V. J. Marathe, N. Shavit, "Lock Cohorting: A General Technique for Designing NUMA
// Locks", PPoPP 2012 (and ACM TOPC 1(2), 2015).
// Idea: a thread takes its node's ticket lock, then the global ticket lock unless the previous local
// holder passed the global lock on with the local one. A releaser whose node has a waiter keeps the
// global lock for its node and hands over only the local lock, at most `pass-limit` times in a row.
//
// Cohort detection: a waiter has taken a local ticket iff local.next != local.owner + 1. Tickets are
// never returned, so the answer has no false positives: a waiter seen is a waiter that will be served.
// A stale (relaxed) read can only miss a waiter that is just arriving; that one then takes the global
// lock itself.
//
// The node's cohort record (passed, handoffs), touched only by the holder of the node's local lock:
//   lock,   record (0, k)                     -> take the global lock; record unchanged
//   lock,   record (1, k)                     -> the global lock is already ours; record unchanged
//   unlock, local waiter and k < pass-limit   -> (1, k + 1), then release the local lock only
//   unlock, otherwise                         -> (0, 0), release the global lock, then the local one
// Invariants:
//  - at most one node's cohort owns the global lock, and while it does, the thread in the critical
//    section holds that node's local lock (a thread never holds the global lock without its local one);
//  - passed == 1 only while the local lock is being handed to a waiter that exists, so the global lock
//    is never left owned by a node with nobody to release it;
//  - handoffs <= pass-limit: after pass-limit consecutive local handoffs the global lock is released
//    even if local waiters remain (the bound on unfairness between nodes);
//  - the global lock is released before the local one, so the next local holder never finds the
//    global lock still being released by its predecessor.
// The global ticket lock is thread-oblivious: any thread of the owning cohort may release it.
// Layout: the global ticket (next, owner) alone on a 128-byte block; one 128-byte block per node,
// the local ticket (next, owner) on its first cache line and the cohort record on its second, so
// that the record, written by each holder, does not invalidate the line the local waiters spin on.
// Parameters: `pass-limit` (default 100, as LiTL; ck uses 10).

import CShims

public struct CTKTTKTLock: LockAlgorithm {
    public struct Context {
        /// The thread's node's local ticket lock: `next` at [0], `owner` at [1].
        @usableFromInline let local: UnsafeMutablePointer<UInt32>
        /// The node's cohort record: global-passed flag (0 or 1) at [0], consecutive local handoffs at [1].
        @usableFromInline let record: UnsafeMutablePointer<UInt32>
    }

    public static let descriptor = LockDescriptor(
        name: "c-tkt-tkt", family: .numa, waiting: .spin,
        paper: "Dice, Marathe & Shavit, PPoPP 2012 (lock cohorting: C-TKT-TKT)",
        supportsTryLock: true,
        options: [
            LockOptionSpec("pass-limit", default: 100, range: 0...(1 << 30),
                           help: "consecutive local handoffs before the global lock is released too"),
        ])

    /// Offset of the cohort record in a node's block: its second cache line.
    @usableFromInline static let recordOffset = LabMemory.alignment / 2

    /// The global ticket lock: `next` at [0], `owner` at [1], alone on its block.
    @usableFromInline let global: UnsafeMutablePointer<UInt32>
    /// `nodeCount` blocks of 128 bytes, one per node.
    @usableFromInline let nodes: UnsafeMutableRawPointer
    @usableFromInline let nodeCount: Int
    @usableFromInline let passLimit: UInt32
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        nodeCount = environment.nodeCount
        passLimit = UInt32(environment.options.int("pass-limit"))
        global = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 2)
        nodes = memory.allocate(bytes: LabMemory.alignment * nodeCount)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        precondition(thread.node >= 0 && thread.node < nodeCount,
                     "c-tkt-tkt: thread node \(thread.node) outside 0..<\(nodeCount)")
        let block = nodes + thread.node * LabMemory.alignment
        return Context(local: block.bindMemory(to: UInt32.self, capacity: 2),
                       record: (block + Self.recordOffset).bindMemory(to: UInt32.self, capacity: 2))
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        // Local ticket lock. Relaxed ticket; acquire on the `owner` load that grants (pairs with the
        // previous local holder's release store, which also publishes the cohort record).
        let ticket = cshims_u32_fetch_add_relaxed(context.local, 1)
        while cshims_u32_load_acquire(context.local + 1) != ticket {
            cshims_pause()
        }
        // Relaxed: the record is only touched under the local lock, which ordered its last write.
        if cshims_u32_load_relaxed(context.record) != 0 { return }
        acquireGlobal()
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        // Local: take ticket `serving` only if nobody has (next == owner), as `ticket` does.
        let serving = cshims_u32_load_acquire(context.local + 1)
        var expected = serving
        guard cshims_u32_cas_acquire(context.local, &expected, serving &+ 1) else { return false }
        // The local lock was free with no waiter, so its last release was a global one and the record
        // reads (0, 0); checked anyway, as ck and LiTL do, so that trylock never depends on that.
        if cshims_u32_load_relaxed(context.record) != 0 { return true }
        let globalServing = cshims_u32_load_acquire(global + 1)
        var globalExpected = globalServing
        if cshims_u32_cas_acquire(global, &globalExpected, globalServing &+ 1) { return true }
        // Global busy: give the local lock back (the record is unchanged). Release, as any unlock.
        cshims_u32_store_release(context.local + 1, serving &+ 1)
        return false
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        // Only the local holder writes local.owner and the record: relaxed reads of them are exact.
        let owner = cshims_u32_load_relaxed(context.local + 1)
        let handoffs = cshims_u32_load_relaxed(context.record + 1)
        // Cohort detection (see the header): relaxed, a hint with no false positives.
        if handoffs < passLimit && cshims_u32_load_relaxed(context.local) != owner &+ 1 {
            // (passed, handoffs) -> (1, handoffs + 1); published by the release store below.
            cshims_u32_store_relaxed(context.record, 1)
            cshims_u32_store_relaxed(context.record + 1, handoffs &+ 1)
            // Release: critical section and record happen-before the next local holder's acquire.
            cshims_u32_store_release(context.local + 1, owner &+ 1)
            return
        }
        // (*, *) -> (0, 0), global lock first, then the local one.
        cshims_u32_store_relaxed(context.record, 0)
        cshims_u32_store_relaxed(context.record + 1, 0)
        releaseGlobal()
        cshims_u32_store_release(context.local + 1, owner &+ 1)
    }

    /// Takes the global ticket lock for this thread's cohort.
    @inline(__always)
    func acquireGlobal() {
        // Relaxed ticket; acquire pairs with the release store of the previous global releaser.
        let ticket = cshims_u32_fetch_add_relaxed(global, 1)
        while cshims_u32_load_acquire(global + 1) != ticket {
            cshims_pause()
        }
    }

    /// Releases the global ticket lock; the caller may not be the thread that took it.
    @inline(__always)
    func releaseGlobal() {
        // Relaxed read is exact: global.owner last changed when this cohort was granted the lock, and
        // the local lock's release/acquire chain orders that grant before this read.
        let served = cshims_u32_load_relaxed(global + 1)
        // Release: the critical sections of this cohort happen-before the next node's acquire.
        cshims_u32_store_release(global + 1, served &+ 1)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(global), bytes: LabMemory.alignment)
        memory.deallocate(nodes, bytes: LabMemory.alignment * nodeCount)
    }
}
