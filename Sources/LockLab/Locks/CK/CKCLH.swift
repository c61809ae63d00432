// ck-clh: Concurrency Kit's CLH lock (ck_spinlock_clh), the C reference.
//
// Paper: Craig 1993; Magnussen, Landin & Hagersten, IPPS 1994, as ck writes it
// (include/spinlock/clh.h).
// Idea: implicit queue; a thread sets its node's `wait`, swaps it into the tail and spins on the
// predecessor's `wait`. ck_spinlock_clh_unlock(&node) clears `wait` on the thread's node and
// replaces the thread's pointer with the predecessor's node (saved in `node->previous` at lock).
// Invariants (node ownership, as in `clh`): the lock owns the node in the queue word, each thread
// owns the node its Context points to; at rest these are pairwise distinct and are all the nodes
// ever allocated (the dummy from init plus one per context), so freeContext frees the context's
// node and deallocate frees the queue's node; neither frees what it allocated. All nodes come from
// the lock's LabMemory because whoever frees a node did not allocate it.
// No trylock: ck has none for CLH.

import CCK

public struct CKCLHLock: LockAlgorithm {
    public struct Context {
        /// The node this thread owns now; ck_spinlock_clh_unlock swaps it for the predecessor's.
        /// Never nil; optional only because ck's unlock takes its address as `struct ck_spinlock_clh **`.
        @usableFromInline var node: UnsafeMutablePointer<ck_spinlock_clh>?
    }

    public static let descriptor = LockDescriptor(
        name: "ck-clh", family: .reference, waiting: .spin,
        paper: "Concurrency Kit ck_spinlock_clh (Craig; Magnussen, Landin & Hagersten, IPPS 1994)",
        supportsTryLock: false)

    /// The queue word (`struct ck_spinlock_clh *`, never NULL after init), alone on its block.
    @usableFromInline let queue: UnsafeMutablePointer<UnsafeMutablePointer<ck_spinlock_clh>?>
    @usableFromInline let memory: LabMemory

    @usableFromInline static var nodeBytes: Int {
        (cck_clh_node_size() + LabMemory.alignment - 1) / LabMemory.alignment * LabMemory.alignment
    }

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        queue = memory.allocate(bytes: LabMemory.alignment)
            .bindMemory(to: UnsafeMutablePointer<ck_spinlock_clh>?.self, capacity: 1)
        let unowned = memory.allocate(bytes: Self.nodeBytes).bindMemory(to: ck_spinlock_clh.self, capacity: 1)
        ck_spinlock_clh_init(queue, unowned)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        Context(node: memory.allocate(bytes: Self.nodeBytes).bindMemory(to: ck_spinlock_clh.self, capacity: 1))
    }

    public func freeContext(_ context: inout Context) {
        memory.deallocate(UnsafeMutableRawPointer(context.node!), bytes: Self.nodeBytes)
    }

    // Orders: ck's own (ck_pr_fence_store_atomic before the swap, ck_pr_fence_lock / _unlock).
    @inline(__always)
    public func lock(_ context: inout Context) {
        ck_spinlock_clh_lock(queue, context.node)
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        ck_spinlock_clh_unlock(&context.node)
    }

    public func deallocate() {
        // All threads are done: the queue's node is owned by the lock alone.
        memory.deallocate(UnsafeMutableRawPointer(queue.pointee!), bytes: Self.nodeBytes)
        memory.deallocate(UnsafeMutableRawPointer(queue), bytes: LabMemory.alignment)
    }
}
