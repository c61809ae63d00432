// ck-mcs: Concurrency Kit's MCS lock (ck_spinlock_mcs), the C reference.
//
// Paper: Mellor-Crummey & Scott, ACM TOCS 1991, as ck writes it (include/spinlock/mcs.h).
// Idea: the lock is a tail pointer; a thread swaps its node in, links behind its predecessor and
// spins on its own node; release hands to `next`, or CASes the tail back to NULL.
// Invariants: ck's; the tail (`ck_spinlock_mcs_t`, a `struct ck_spinlock_mcs *`) is alone on its
// 128-byte block; each thread's node is its own padded block, reused only after its unlock returns.
// Nodes are allocated locally by the thread (first touch after pinning), as in `mcs`.

import CCK

public struct CKMCSLock: LockAlgorithm {
    public struct Context {
        @usableFromInline let node: UnsafeMutablePointer<ck_spinlock_mcs>
    }

    public static let descriptor = LockDescriptor(
        name: "ck-mcs", family: .reference, waiting: .spin,
        paper: "Concurrency Kit ck_spinlock_mcs (Mellor-Crummey & Scott, ACM TOCS 1991)",
        supportsTryLock: true)

    /// The queue tail, alone on its block.
    @usableFromInline let queue: UnsafeMutablePointer<ck_spinlock_mcs_t?>
    @usableFromInline let memory: LabMemory

    @usableFromInline static var nodeBytes: Int {
        (cck_mcs_node_size() + LabMemory.alignment - 1) / LabMemory.alignment * LabMemory.alignment
    }

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        queue = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: ck_spinlock_mcs_t?.self, capacity: 1)
        cck_mcs_init(queue)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        // Local memory: the node is touched first by its own thread, after pinning.
        let raw = LabMemory().allocate(bytes: Self.nodeBytes)
        return Context(node: raw.bindMemory(to: ck_spinlock_mcs.self, capacity: 1))
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(UnsafeMutableRawPointer(context.node), bytes: Self.nodeBytes)
    }

    // Orders: ck's own (ck_pr_fence_store_atomic before the swap, ck_pr_fence_lock / _unlock).
    @inline(__always)
    public func lock(_ context: inout Context) {
        ck_spinlock_mcs_lock(queue, context.node)
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        ck_spinlock_mcs_trylock(queue, context.node)
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        ck_spinlock_mcs_unlock(queue, context.node)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(queue), bytes: LabMemory.alignment)
    }
}
