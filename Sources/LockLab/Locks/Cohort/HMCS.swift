// hmcs: the hierarchical MCS lock, two levels (NUMA node, then the machine).
//
// Paper: M. Chabbi, M. Fagan, J. Mellor-Crummey, "High Performance Locks for Multi-level NUMA
// Systems", PPoPP 2015.
// Idea: an MCS lock per node whose queue nodes carry a status word, plus a root MCS lock in which
// each node takes part through one queue node of its own. The local handover writes into the
// successor's status either "the root lock comes with it, after k local handoffs" or "take the root".
//
// Levels: LockEnvironment gives only nodeCount, so the tree has two levels (per-node, root), as in
// LiTL's hmcs; the paper's deeper trees (L3 group, package) need a topology the lock is not given.
// The root-level queue node of a node lives in the node's block: it is enqueued by the thread that
// takes the root lock and released by whichever thread of the node ends the tenure.
//
// Status of a thread's queue node (the `locked` word of its `MCSNode`; written by the thread
// before it enqueues, then by its predecessor once, with the handover):
//   WAIT (2^32-1)           -> k in 2...threshold    local handover, the root lock comes with it
//   WAIT                    -> ACQUIRE_PARENT        local handover, root lock released: take it
//   no predecessor, or ACQUIRE_PARENT -> 1           the thread took the root lock: tenure starts
// Unlock by a holder with status k (the k-th acquisition of the node's tenure):
//   k < threshold and a linked successor   -> successor.status = k + 1 (root lock kept)
//   otherwise                              -> release the root lock, then the local lock with
//                                             successor.status = ACQUIRE_PARENT (if any)
// Invariants:
//  - at most one node holds the root lock; its root queue node heads the root queue, and the thread
//    in the critical section holds that node's local lock;
//  - a node's root queue node is in the root queue at most once: it is enqueued only by a thread that
//    got the local lock without the root lock, which happens only after the release of the root lock
//    by the previous tenure (and so its removal from the root queue) has returned;
//  - 1 <= status <= threshold while holding: a tenure is at most `threshold` acquisitions, after
//    which the root lock is released even if local waiters remain;
//  - MCS's, at both levels: each waiter spins on its own word, written once by its predecessor.
// Both levels are MCSQueue (Queue/MCSQueue.swift): the root's grant is 0, the local one's a status.
// Cohort detection is the paper's: a successor counts only once linked (`next != nil`); one that has
// swapped the tail but not linked yet gets ACQUIRE_PARENT.
// Reference: LiTL's src/hmcs.c (github.com/multicore-locks/litl, 916469c), exactly: the status
// counts acquisitions per tenure, starting at COHORT_START 1 (hmcs.c:52), the root lock released
// when it reaches RELEASE_THRESHOLD 100 (hmcs.h:34, hmcs.c:223), so `threshold` N gives N
// acquisitions (N - 1 local handoffs) per tenure, as the paper's h does. (The cohort locks'
// `pass-limit` counts handoffs, but ck's rule counts acquisitions: hmcs:threshold=N keeps the root
// lock as c-mcs-mcs:pass-limit=N:pass-rule=1 keeps the global one.)
// Layout: the root tail alone on a 128-byte block; 256 bytes per node: the local tail on the first
// 128-byte block and the node's root queue node on the second (remote threads write it); per-thread
// queue nodes padded to 128 bytes, allocated by their thread.

import CShims

struct HMCSLock: LockAlgorithm {
    struct Context {
        /// The thread's own queue node for its node's local queue.
        let node: UnsafeMutableRawPointer
        /// The local MCS tail of the thread's node.
        let localTail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
        /// The node's queue node in the root MCS queue, shared by the node's threads.
        let nodeRootNode: UnsafeMutableRawPointer
    }

    static let descriptor = LockDescriptor(
        name: "hmcs", family: .numa, waiting: .spin,
        paper: "Chabbi, Fagan & Mellor-Crummey, PPoPP 2015 (two levels); defaults LiTL's hmcs.c (threshold 100 acquisitions)",
        supportsTryLock: true,
        options: [
            LockOptionSpec("threshold", default: 100, range: 1...(1 << 30),
                           help: "acquisitions per tenure at the node level before the root lock is released (LiTL's RELEASE_THRESHOLD 100)"),
        ])

    /// Status: waiting for the predecessor.
    static let wait = UInt32.max
    /// Status: local lock granted without the root lock.
    static let acquireParent = UInt32.max - 1
    /// Status of a tenure's first acquisition (LiTL's COHORT_START).
    static let cohortStart: UInt32 = 1

    /// Bytes per node: local tail (128), the node's root queue node (128).
    static let nodeStride = 2 * LabMemory.alignment
    /// Offset of the node's root queue node in its block.
    static let rootNodeOffset = LabMemory.alignment

    /// Tail of the root queue (an `MCSNode*` in some node's block), alone on its block.
    let rootTail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// `nodeCount` blocks of `nodeStride` bytes, one per node.
    let nodes: UnsafeMutableRawPointer
    let nodeCount: Int
    let threshold: UInt32
    let memory: LabMemory

    init(_ environment: LockEnvironment) {
        precondition(MemoryLayout<MCSNode>.size <= LabMemory.alignment)
        memory = environment.memory
        nodeCount = environment.nodeCount
        threshold = UInt32(environment.options.int("threshold"))
        rootTail = memory.allocate(bytes: LabMemory.alignment)
            .bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
        nodes = memory.allocate(bytes: Self.nodeStride * nodeCount)
    }

    func makeContext(for thread: ThreadSlot) -> Context {
        precondition(thread.node >= 0 && thread.node < nodeCount,
                     "hmcs: thread node \(thread.node) outside 0..<\(nodeCount)")
        let block = nodes + thread.node * Self.nodeStride
        // Local memory: the queue node is touched first by its own thread, after pinning.
        return Context(node: LabMemory().allocatePadded(MCSNode.self),
                       localTail: block.bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1),
                       nodeRootNode: block + Self.rootNodeOffset)
    }

    func freeContext(_ context: inout Context) {
        LabMemory().deallocate(context.node, bytes: LabMemory.paddedStride(of: MCSNode.self))
    }

    @inline(__always)
    func lock(_ context: inout Context) {
        // Enqueue with status WAIT; an empty queue or ACQUIRE_PARENT means: take the root.
        let granted = MCSQueue.acquire(context.node, tail: context.localTail, waiting: SpinWaiting.self,
                                       waitValue: Self.wait, freeValue: Self.acquireParent)
        if granted != Self.acquireParent { return }
        // Tenure starts. Relaxed: only this holder reads its status until it hands over.
        cshims_u32_store_relaxed(MCSQueue.lockedField(context.node), Self.cohortStart)
        MCSQueue.acquire(context.nodeRootNode, tail: rootTail)
    }

    @inline(__always)
    func tryLock(_ context: inout Context) -> Bool {
        guard MCSQueue.tryAcquire(context.node, tail: context.localTail) else { return false }
        cshims_u32_store_relaxed(MCSQueue.lockedField(context.node), Self.cohortStart)
        if MCSQueue.tryAcquire(context.nodeRootNode, tail: rootTail) { return true }
        // Root busy: give the local lock back; a successor that queued meanwhile takes the root.
        MCSQueue.release(context.node, tail: context.localTail, waiting: SpinWaiting.self, grant: Self.acquireParent)
        return false
    }

    @inline(__always)
    func unlock(_ context: inout Context) {
        // Only the holder reads its status now: relaxed is exact.
        let acquisitions = cshims_u32_load_relaxed(MCSQueue.lockedField(context.node))
        if acquisitions < threshold, let successor = cshims_ptr_load_acquire(MCSQueue.nextField(context.node)) {
            // Release: the critical section happens-before the successor's acquire of its status.
            cshims_u32_store_release(MCSQueue.lockedField(successor), acquisitions &+ 1)
            return
        }
        endTenure(context)
    }

    /// Unlock that ends the node's tenure: the root lock first (its queue node leaves the root queue
    /// before any local successor can enqueue it again), then the local lock, telling a successor to
    /// take the root. Out of line (the slow path, as the stdlib's Mutex does), so that the local
    /// handoff stays small enough to inline.
    @inline(never)
    func endTenure(_ context: Context) {
        MCSQueue.release(context.nodeRootNode, tail: rootTail)
        MCSQueue.release(context.node, tail: context.localTail, waiting: SpinWaiting.self, grant: Self.acquireParent)
    }

    func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(rootTail), bytes: LabMemory.alignment)
        memory.deallocate(nodes, bytes: Self.nodeStride * nodeCount)
    }
}
