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
// Status of a thread's queue node (written by the thread before it enqueues, then by its
// predecessor once, with the handover):
//   WAIT (2^32-1)           -> k in 0...threshold   local handover, the root lock comes with it
//   WAIT                    -> ACQUIRE_PARENT        local handover, root lock released: take it
//   no predecessor, or ACQUIRE_PARENT -> 0           the thread took the root lock: tenure starts
// Unlock by a holder with status k:
//   k < threshold and a linked successor   -> successor.status = k + 1 (root lock kept)
//   otherwise                              -> release the root lock, then the local lock with
//                                             successor.status = ACQUIRE_PARENT (if any)
// Invariants:
//  - at most one node holds the root lock; its root queue node heads the root queue, and the thread
//    in the critical section holds that node's local lock;
//  - a node's root queue node is in the root queue at most once: it is enqueued only by a thread that
//    got the local lock without the root lock, which happens only after the release of the root lock
//    by the previous tenure (and so its removal from the root queue) has returned;
//  - status <= threshold while holding: after `threshold` consecutive local handoffs the root lock is
//    released even if local waiters remain;
//  - MCS's, at both levels: each waiter spins on its own word, written once by its predecessor.
// Cohort detection is the paper's: a successor counts only once linked (`next != nil`); one that has
// swapped the tail but not linked yet gets ACQUIRE_PARENT.
// Threshold: `threshold` counts local handoffs, as `pass-limit` does in the cohort locks, so that
// hmcs:threshold=N and c-mcs-mcs:pass-limit=N keep the root lock for the same N handoffs. The
// paper's and LiTL's h counts acquisitions per tenure (their status starts at 1): h = threshold + 1,
// so LiTL's default (100) is threshold=99 here; the default 100 is within one handoff of it.
// Layout: the root tail alone on a 128-byte block; 256 bytes per node: the local tail on the first
// 128-byte block and the node's root queue node on the second (remote threads write it); per-thread
// queue nodes padded to 128 bytes, allocated by their thread.

import CShims

/// An HMCS queue node: `status` is WAIT while the owner waits, then what the predecessor granted.
@usableFromInline
struct HMCSNode {
    @usableFromInline var next: UnsafeMutableRawPointer?
    @usableFromInline var status: UInt32
}

public struct HMCSLock: LockAlgorithm {
    public struct Context {
        /// The thread's own queue node for its node's local queue.
        @usableFromInline let node: UnsafeMutablePointer<HMCSNode>
        /// The local MCS tail of the thread's node.
        @usableFromInline let localTail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
        /// The node's queue node in the root MCS queue, shared by the node's threads.
        @usableFromInline let nodeRootNode: UnsafeMutablePointer<MCSNode>
    }

    public static let descriptor = LockDescriptor(
        name: "hmcs", family: .numa, waiting: .spin,
        paper: "Chabbi, Fagan & Mellor-Crummey, PPoPP 2015 (two levels)",
        supportsTryLock: true,
        options: [
            LockOptionSpec("threshold", default: 100, range: 0...(1 << 30),
                           help: "consecutive local handoffs at the node level before the root lock is released"),
        ])

    /// Status: waiting for the predecessor.
    @usableFromInline static let wait = UInt32.max
    /// Status: local lock granted without the root lock.
    @usableFromInline static let acquireParent = UInt32.max - 1

    /// Bytes per node: local tail (128), the node's root queue node (128).
    @usableFromInline static let nodeStride = 2 * LabMemory.alignment
    /// Offset of the node's root queue node in its block.
    @usableFromInline static let rootNodeOffset = LabMemory.alignment

    /// Tail of the root queue (an `MCSNode*` in some node's block), alone on its block.
    @usableFromInline let rootTail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// `nodeCount` blocks of `nodeStride` bytes, one per node.
    @usableFromInline let nodes: UnsafeMutableRawPointer
    @usableFromInline let nodeCount: Int
    @usableFromInline let threshold: UInt32
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        precondition(MemoryLayout<MCSNode>.size <= LabMemory.alignment)
        memory = environment.memory
        nodeCount = environment.nodeCount
        threshold = UInt32(environment.options.int("threshold"))
        rootTail = memory.allocate(bytes: LabMemory.alignment)
            .bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
        nodes = memory.allocate(bytes: Self.nodeStride * nodeCount)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        precondition(thread.node >= 0 && thread.node < nodeCount,
                     "hmcs: thread node \(thread.node) outside 0..<\(nodeCount)")
        let block = nodes + thread.node * Self.nodeStride
        // Local memory: the queue node is touched first by its own thread, after pinning.
        let raw = LabMemory().allocatePadded(HMCSNode.self)
        return Context(node: raw.bindMemory(to: HMCSNode.self, capacity: 1),
                       localTail: block.bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1),
                       nodeRootNode: (block + Self.rootNodeOffset).bindMemory(to: MCSNode.self, capacity: 1))
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(UnsafeMutableRawPointer(context.node), bytes: LabMemory.paddedStride(of: HMCSNode.self))
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        let me = UnsafeMutableRawPointer(context.node)
        let status = Self.statusField(me)
        cshims_ptr_store_relaxed(Self.nextField(me), nil)
        cshims_u32_store_relaxed(status, Self.wait)
        // acq_rel: release publishes our initialised node; acquire pairs with the last release if free.
        if let predecessor = cshims_ptr_exchange_acq_rel(context.localTail, me) {
            // Release: the predecessor sees our status = WAIT before it can hand over.
            cshims_ptr_store_release(Self.nextField(predecessor), me)
            // Acquire: pairs with the predecessor's release store of our status.
            var granted = cshims_u32_load_acquire(status)
            while granted == Self.wait {
                cshims_pause()
                granted = cshims_u32_load_acquire(status)
            }
            if granted != Self.acquireParent { return }
        }
        // Tenure starts: no local handoff yet. Relaxed: only this holder reads it until it hands over.
        cshims_u32_store_relaxed(status, 0)
        Self.acquireRoot(UnsafeMutableRawPointer(context.nodeRootNode), tail: rootTail)
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        let me = UnsafeMutableRawPointer(context.node)
        cshims_ptr_store_relaxed(Self.nextField(me), nil)
        var expected: UnsafeMutableRawPointer? = nil
        // acq_rel, as `mcs`: publish our node to later arrivals; order after the last release.
        guard cshims_ptr_cas_acq_rel(context.localTail, &expected, me) else { return false }
        cshims_u32_store_relaxed(Self.statusField(me), 0)
        let rootNode = UnsafeMutableRawPointer(context.nodeRootNode)
        cshims_ptr_store_relaxed(Self.nextField(rootNode), nil)
        var rootExpected: UnsafeMutableRawPointer? = nil
        if cshims_ptr_cas_acq_rel(rootTail, &rootExpected, rootNode) { return true }
        // Root busy: give the local lock back; a successor that queued meanwhile takes the root.
        releaseLocal(me, tail: context.localTail, grant: Self.acquireParent)
        return false
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        let me = UnsafeMutableRawPointer(context.node)
        // Only the holder reads its status now: relaxed is exact.
        let handoffs = cshims_u32_load_relaxed(Self.statusField(me))
        if handoffs < threshold, let successor = cshims_ptr_load_acquire(Self.nextField(me)) {
            // Release: the critical section happens-before the successor's acquire of its status.
            cshims_u32_store_release(Self.statusField(successor), handoffs &+ 1)
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
        Self.releaseRoot(UnsafeMutableRawPointer(context.nodeRootNode), tail: rootTail)
        releaseLocal(UnsafeMutableRawPointer(context.node), tail: context.localTail, grant: Self.acquireParent)
    }

    // MARK: - Fields

    @inline(__always)
    static func nextField(_ node: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        // `next` is at offset 0 in both HMCSNode and MCSNode.
        node.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }

    @inline(__always)
    static func statusField(_ node: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt32> {
        (node + MemoryLayout<HMCSNode>.offset(of: \HMCSNode.status)!).assumingMemoryBound(to: UInt32.self)
    }

    @inline(__always)
    static func lockedField(_ node: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt32> {
        (node + MemoryLayout<MCSNode>.offset(of: \MCSNode.locked)!).assumingMemoryBound(to: UInt32.self)
    }

    // MARK: - Node level

    /// Releases the local lock, handing `grant` to the successor if there is one.
    @inline(__always)
    func releaseLocal(_ me: UnsafeMutableRawPointer, tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>, grant: UInt32) {
        var successor = cshims_ptr_load_acquire(Self.nextField(me))
        if successor == nil {
            // Release: the critical section happens-before the next local acquirer's exchange.
            var expected: UnsafeMutableRawPointer? = me
            if cshims_ptr_cas_release(tail, &expected, nil) { return }
            // A thread swapped the tail but has not linked yet: wait for its link.
            repeat {
                cshims_pause()
                successor = cshims_ptr_load_acquire(Self.nextField(me))
            } while successor == nil
        }
        // Release: pairs with the successor's acquire load of its status.
        cshims_u32_store_release(Self.statusField(successor!), grant)
    }

    // MARK: - Root level (plain MCS over the nodes' root queue nodes, as `mcs`)

    @inline(__always)
    static func acquireRoot(_ me: UnsafeMutableRawPointer, tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>) {
        let locked = lockedField(me)
        cshims_ptr_store_relaxed(nextField(me), nil)
        cshims_u32_store_relaxed(locked, 1)
        // acq_rel: release publishes the initialised node; acquire pairs with the last release if free.
        guard let predecessor = cshims_ptr_exchange_acq_rel(tail, me) else { return }
        // Release: the predecessor sees `locked = 1` before it can hand over.
        cshims_ptr_store_release(nextField(predecessor), me)
        // Acquire: pairs with the previous root holder's handover store.
        while cshims_u32_load_acquire(locked) != 0 {
            cshims_pause()
        }
    }

    /// Releases the root lock; returns once nobody will touch the node's root queue node again.
    @inline(__always)
    static func releaseRoot(_ me: UnsafeMutableRawPointer, tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>) {
        var successor = cshims_ptr_load_acquire(nextField(me))
        if successor == nil {
            // Release: this node's critical sections happen-before the next root acquirer's exchange.
            var expected: UnsafeMutableRawPointer? = me
            if cshims_ptr_cas_release(tail, &expected, nil) { return }
            repeat {
                cshims_pause()
                successor = cshims_ptr_load_acquire(nextField(me))
            } while successor == nil
        }
        // Release: pairs with the next node's acquire load of its `locked`.
        cshims_u32_store_release(lockedField(successor!), 0)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(rootTail), bytes: LabMemory.alignment)
        memory.deallocate(nodes, bytes: Self.nodeStride * nodeCount)
    }
}
