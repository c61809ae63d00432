// c-bo-mcs: lock cohorting with a global backoff test-and-test-and-set lock and an MCS lock per node.
//
// Paper: D. Dice, V. J. Marathe, N. Shavit, "Lock Cohorting: A General Technique for Designing NUMA
// Locks", PPoPP 2012 (and ACM TOPC 1(2), 2015).
// Idea: a thread queues on its node's MCS lock, then takes the global TTAS lock unless the previous
// local holder passed the global lock on with the local one. A releaser whose node has a waiter keeps
// the global lock for its node and hands over only the local lock, at most `pass-limit` times in a row.
//
// Cohort detection: a waiter is queued behind the holder iff holder.next != nil or tail != holder.
// Only arrivals move the tail away from the holder's node, so neither test has false positives; a
// stale (relaxed) read can only miss a waiter that is just arriving, which then takes the global lock.
//
// The node's cohort record (passed, handoffs), touched only by the holder of the node's local lock:
//   lock,   record (0, k)                     -> take the global lock; record unchanged
//   lock,   record (1, k)                     -> the global lock is already ours; record unchanged
//   unlock, local waiter and k < pass-limit   -> (1, k + 1), then release the local lock only
//   unlock, otherwise                         -> (0, 0), release the global lock, then the local one
// The global word: 0 -> 1 by the exchange of a cohort's first thread; 1 -> 0 by whichever thread of
// that cohort releases it (the TTAS lock is thread-oblivious, so nothing has to travel with it).
// Invariants:
//  - at most one node's cohort owns the global lock, and while it does, the thread in the critical
//    section holds that node's local lock;
//  - passed == 1 only while the local lock is being handed to a waiter that exists;
//  - handoffs <= pass-limit: after pass-limit consecutive local handoffs the global lock is released
//    even if local waiters remain;
//  - the global lock is released before the local one;
//  - MCS's: a queue node is reused only after its owner's unlock has returned.
// The global lock is not FIFO: which node's cohort gets it next is a race between the nodes' heads.
// Layout: the global word alone on a 128-byte block; one 128-byte block per node, the local MCS tail
// on its first cache line (arrivals swap it) and the cohort record on its second (the holder writes
// it); per-thread MCS nodes padded to 128 bytes, allocated by their thread.
// Parameters: `pass-limit` (default 100, as LiTL; ck uses 10). The global backoff bounds are
// `backoff`'s defaults (16 to 1024 pause iterations): at most one thread per node contends for it.

import CShims

public struct CBOMCSLock: LockAlgorithm {
    public struct Context {
        /// The thread's own MCS node for its node's local queue.
        @usableFromInline let node: UnsafeMutablePointer<MCSNode>
        /// The local MCS tail of the thread's node.
        @usableFromInline let localTail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
        /// The node's cohort record: global-passed flag (0 or 1) at [0], consecutive local handoffs at [1].
        @usableFromInline let record: UnsafeMutablePointer<UInt32>
    }

    public static let descriptor = LockDescriptor(
        name: "c-bo-mcs", family: .numa, waiting: .spin,
        paper: "Dice, Marathe & Shavit, PPoPP 2012 (lock cohorting: C-BO-MCS)",
        supportsTryLock: true,
        options: [
            LockOptionSpec("pass-limit", default: 100, range: 0...(1 << 30),
                           help: "consecutive local handoffs before the global lock is released too"),
        ])

    /// Offset of the cohort record in a node's block: its second cache line.
    @usableFromInline static let recordOffset = LabMemory.alignment / 2
    /// Global backoff after a lost exchange, in pause iterations (`backoff`'s defaults).
    @usableFromInline static let minBackoffPauses: UInt32 = 16
    @usableFromInline static let maxBackoffPauses: UInt32 = 1024

    /// The global lock word, alone on its block: 0 free, 1 owned by some node's cohort.
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
        global = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 1)
        nodes = memory.allocate(bytes: LabMemory.alignment * nodeCount)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        precondition(thread.node >= 0 && thread.node < nodeCount,
                     "c-bo-mcs: thread node \(thread.node) outside 0..<\(nodeCount)")
        let block = nodes + thread.node * LabMemory.alignment
        // Local memory: the MCS node is touched first by its own thread, after pinning.
        let raw = LabMemory().allocatePadded(MCSNode.self)
        return Context(node: raw.bindMemory(to: MCSNode.self, capacity: 1),
                       localTail: block.bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1),
                       record: (block + Self.recordOffset).bindMemory(to: UInt32.self, capacity: 2))
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(UnsafeMutableRawPointer(context.node), bytes: LabMemory.paddedStride(of: MCSNode.self))
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        MCSQueue.acquire(UnsafeMutableRawPointer(context.node), tail: context.localTail)
        // Relaxed: the record is only touched under the local lock, which ordered its last write.
        if cshims_u32_load_relaxed(context.record) != 0 { return }
        acquireGlobal()
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        let me = UnsafeMutableRawPointer(context.node)
        guard MCSQueue.tryAcquire(me, tail: context.localTail) else { return false }
        // An empty local queue means its last release was a global one (record (0, 0)); checked anyway.
        if cshims_u32_load_relaxed(context.record) != 0 { return true }
        // Global: TTAS once. Acquire: the exchange that returns 0 orders the critical section after it.
        if cshims_u32_load_relaxed(global) == 0 && cshims_u32_exchange_acquire(global, 1) == 0 { return true }
        // Global busy: give the local lock back; a waiter that queued meanwhile finds the record (0, 0)
        // and takes the global lock itself.
        MCSQueue.release(me, tail: context.localTail)
        return false
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        let me = UnsafeMutableRawPointer(context.node)
        // Only the local holder writes the record: relaxed reads of it are exact.
        let handoffs = cshims_u32_load_relaxed(context.record + 1)
        // Cohort detection (see the header), no false positives. Acquire on `next`: if set, it is
        // the successor we hand to (pairs with its release link); relaxed on the tail: a hint.
        var successor = cshims_ptr_load_acquire(MCSQueue.nextField(me))
        if handoffs < passLimit && (successor != nil || cshims_ptr_load_relaxed(context.localTail) != me) {
            // (passed, handoffs) -> (1, handoffs + 1); published by the handover's release.
            cshims_u32_store_relaxed(context.record, 1)
            cshims_u32_store_relaxed(context.record + 1, handoffs &+ 1)
            // A successor exists: no tail CAS (it would fail). It may not have linked yet: wait.
            while successor == nil {
                cshims_pause()
                successor = cshims_ptr_load_acquire(MCSQueue.nextField(me))
            }
            // Release: critical section and record happen-before the successor's acquire load.
            cshims_u32_store_release(MCSQueue.lockedField(successor!), 0)
            return
        }
        endTenure(context)
    }

    /// Unlock that ends the node's tenure: (*, *) -> (0, 0), the global lock first, then the local
    /// one. Out of line (the slow path, as the stdlib's Mutex does), so that the local handoff above
    /// stays small enough for the harness's loop to inline.
    @inline(never)
    func endTenure(_ context: Context) {
        cshims_u32_store_relaxed(context.record, 0)
        cshims_u32_store_relaxed(context.record + 1, 0)
        // Release: this cohort's critical sections happen-before the next global acquirer's exchange.
        cshims_u32_store_release(global, 0)
        MCSQueue.release(UnsafeMutableRawPointer(context.node), tail: context.localTail)
    }

    // MARK: - The global backoff TTAS lock (as `backoff`)

    @inline(__always)
    func acquireGlobal() {
        var delay = Self.minBackoffPauses
        while true {
            // Relaxed: only a hint that the exchange may succeed; the exchange does the ordering.
            while cshims_u32_load_relaxed(global) != 0 {
                cshims_pause()
            }
            // Acquire: pairs with the release store of the previous owner cohort.
            if cshims_u32_exchange_acquire(global, 1) == 0 { return }
            for _ in 0..<delay {
                cshims_pause()
            }
            delay = Swift.min(delay &* 2, Self.maxBackoffPauses)
        }
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(global), bytes: LabMemory.alignment)
        memory.deallocate(nodes, bytes: LabMemory.alignment * nodeCount)
    }
}
