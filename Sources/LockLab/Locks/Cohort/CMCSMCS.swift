// c-mcs-mcs: lock cohorting with a global MCS lock and an MCS lock per NUMA node.
//
// Paper: D. Dice, V. J. Marathe, N. Shavit, "Lock Cohorting: A General Technique for Designing NUMA
// Locks", PPoPP 2012 (and ACM TOPC 1(2), 2015).
// Idea: a thread queues on its node's MCS lock, then on the global MCS lock unless the previous local
// holder passed the global lock on with the local one. A releaser whose node has a waiter keeps the
// global lock for its node and hands over only the local lock, at most `pass-limit` times in a row.
//
// The global queue node belongs to the NODE (the cohort), not to a thread. MCS is not
// thread-oblivious: its release reads the releaser's queue node (`next`, then the tail CAS against
// it), and a cohort's global lock is usually released by a different thread than the one that took
// it. So each node's block carries one global queue node; the thread that takes the global lock
// enqueues it, and whichever thread of the cohort releases the global lock releases that same node.
// It travels with the local lock: only the local holder touches it, and it is reused (by the next
// tenure of the same node) only after the release that ends the previous tenure has returned, which
// happens before the local lock is released. (ck_cohort leaves this to its caller, as a global
// context argument; LiTL has no c-mcs-mcs; HMCS keeps the same per-node node in its tree.)
//
// Cohort detection: a waiter is queued behind the holder iff holder.next != nil or tail != holder.
// Neither test has false positives; a stale (relaxed) read can only miss an arriving waiter, which
// then takes the global lock itself.
//
// The node's cohort record (passed, handoffs), touched only by the holder of the node's local lock:
//   lock,   record (0, k)                     -> enqueue the node's global queue node; record unchanged
//   lock,   record (1, k)                     -> the global lock is already ours; record unchanged
//   unlock, local waiter and k < pass-limit   -> (1, k + 1), then release the local lock only
//   unlock, otherwise                         -> (0, 0), release the global lock, then the local one
// Invariants:
//  - at most one node's cohort owns the global lock; its queue node is the global queue's head and
//    the thread in the critical section holds that node's local lock;
//  - a node's global queue node is in the global queue at most once: it is enqueued only with the
//    record at (0, k), i.e. after the release that took it out has returned;
//  - passed == 1 only while the local lock is being handed to a waiter that exists;
//  - handoffs <= pass-limit: after pass-limit consecutive local handoffs the global lock is released
//    even if local waiters remain;
//  - MCS's, at both levels: exactly one node of a queue (its head) owns that level; a per-thread node
//    is reused only after its owner's unlock has returned.
// Layout: the global tail alone on a 128-byte block; 256 bytes per node: the local tail on the first
// cache line, the cohort record on the second, and the node's global queue node on its own 128-byte
// block (remote nodes' threads write it: the global successor links into it, the global predecessor
// hands over through it). Per-thread local MCS nodes padded to 128 bytes, allocated by their thread.
// Parameters: `pass-limit` (default 100, as LiTL's cohort locks; ck uses 10).

import CShims

public struct CMCSMCSLock: LockAlgorithm {
    public struct Context {
        /// The thread's own MCS node for its node's local queue.
        @usableFromInline let node: UnsafeMutablePointer<MCSNode>
        /// The local MCS tail of the thread's node.
        @usableFromInline let localTail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
        /// The node's cohort record: global-passed flag (0 or 1) at [0], consecutive local handoffs at [1].
        @usableFromInline let record: UnsafeMutablePointer<UInt32>
        /// The node's queue node in the global MCS queue, shared by the node's threads.
        @usableFromInline let cohortNode: UnsafeMutablePointer<MCSNode>
    }

    public static let descriptor = LockDescriptor(
        name: "c-mcs-mcs", family: .numa, waiting: .spin,
        paper: "Dice, Marathe & Shavit, PPoPP 2012 (lock cohorting: C-MCS-MCS)",
        supportsTryLock: true,
        options: [
            LockOptionSpec("pass-limit", default: 100, range: 0...(1 << 30),
                           help: "consecutive local handoffs before the global lock is released too"),
        ])

    /// Bytes per node: local tail + cohort record (128), the node's global queue node (128).
    @usableFromInline static let nodeStride = 2 * LabMemory.alignment
    /// Offset of the cohort record in a node's block: its second cache line.
    @usableFromInline static let recordOffset = LabMemory.alignment / 2
    /// Offset of the node's global queue node: its own 128-byte block.
    @usableFromInline static let cohortNodeOffset = LabMemory.alignment

    /// Tail of the global queue (an `MCSNode*` of some node's block), alone on its block.
    @usableFromInline let globalTail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// `nodeCount` blocks of `nodeStride` bytes, one per node.
    @usableFromInline let nodes: UnsafeMutableRawPointer
    @usableFromInline let nodeCount: Int
    @usableFromInline let passLimit: UInt32
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        precondition(MemoryLayout<MCSNode>.size <= LabMemory.alignment)
        memory = environment.memory
        nodeCount = environment.nodeCount
        passLimit = UInt32(environment.options.int("pass-limit"))
        globalTail = memory.allocate(bytes: LabMemory.alignment)
            .bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
        nodes = memory.allocate(bytes: Self.nodeStride * nodeCount)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        precondition(thread.node >= 0 && thread.node < nodeCount,
                     "c-mcs-mcs: thread node \(thread.node) outside 0..<\(nodeCount)")
        let block = nodes + thread.node * Self.nodeStride
        // Local memory: the MCS node is touched first by its own thread, after pinning.
        let raw = LabMemory().allocatePadded(MCSNode.self)
        return Context(node: raw.bindMemory(to: MCSNode.self, capacity: 1),
                       localTail: block.bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1),
                       record: (block + Self.recordOffset).bindMemory(to: UInt32.self, capacity: 2),
                       cohortNode: (block + Self.cohortNodeOffset).bindMemory(to: MCSNode.self, capacity: 1))
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(UnsafeMutableRawPointer(context.node), bytes: LabMemory.paddedStride(of: MCSNode.self))
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        MCSQueue.acquire(UnsafeMutableRawPointer(context.node), tail: context.localTail)
        // Relaxed: the record is only touched under the local lock, which ordered its last write.
        if cshims_u32_load_relaxed(context.record) != 0 { return }
        MCSQueue.acquire(UnsafeMutableRawPointer(context.cohortNode), tail: globalTail)
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        let me = UnsafeMutableRawPointer(context.node)
        guard MCSQueue.tryAcquire(me, tail: context.localTail) else { return false }
        // An empty local queue means its last release was a global one (record (0, 0)); checked anyway.
        if cshims_u32_load_relaxed(context.record) != 0 { return true }
        if MCSQueue.tryAcquire(UnsafeMutableRawPointer(context.cohortNode), tail: globalTail) { return true }
        // Global busy: give the local lock back; a waiter that queued meanwhile finds the record (0, 0)
        // and queues the node's global queue node itself (ours never entered the global queue).
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

    /// Unlock that ends the node's tenure: (*, *) -> (0, 0); the global lock (the node's queue node)
    /// first, then the local one. The global release returns only once the cohort node is out of the
    /// global queue, so the next local holder may enqueue it again. Out of line (the slow path, as
    /// the stdlib's Mutex does), so that the local handoff stays small enough to inline.
    @inline(never)
    func endTenure(_ context: Context) {
        cshims_u32_store_relaxed(context.record, 0)
        cshims_u32_store_relaxed(context.record + 1, 0)
        MCSQueue.release(UnsafeMutableRawPointer(context.cohortNode), tail: globalTail)
        MCSQueue.release(UnsafeMutableRawPointer(context.node), tail: context.localTail)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(globalTail), bytes: LabMemory.alignment)
        memory.deallocate(nodes, bytes: Self.nodeStride * nodeCount)
    }
}
