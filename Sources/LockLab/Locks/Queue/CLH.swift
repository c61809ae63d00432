// clh: the CLH queue lock.
//
// Paper: T. S. Craig, "Building FIFO and Priority-Queuing Spin Locks from Atomic Swap", TR 93-02-02,
// U. Washington, 1993; P. Magnussen, A. Landin, E. Hagersten, "Queue Locks on Cache Coherent
// Multiprocessors", IPPS 1994.
// Idea: the lock is a tail pointer to an implicit queue of nodes. A thread marks its node busy, swaps
// it into the tail and spins on its predecessor's node; release clears its own node. The releaser
// cannot reuse its node (its successor may still be reading it), so it takes over the predecessor's
// node instead: nodes migrate one place down the queue at every acquisition.
// Invariants:
//  - the tail always points to a node (a dummy with busy == 0 at start); busy == 1 on a node means
//    its current owner holds or waits for the lock; exactly one waiter spins on any node;
//  - node ownership: the lock owns the tail node, each thread owns the node in its Context. Lock
//    gives the thread's node to the tail and the tail's old node (the predecessor) to the thread once
//    its busy flag reads 0 (its former owner is done with it, and nobody else reads it). So at every
//    quiescent point, {tail} and every context's node are pairwise distinct and together are all the
//    nodes ever allocated: freeContext frees the context's node, deallocate frees the tail's node.
//    The dummy allocated by init usually ends up in some thread's context, and some thread's node in
//    the tail: neither side may free what it allocated.
//  - all nodes come from the lock's LabMemory (a node does not stay with its thread, so "local to the
//    thread" has no meaning after the first handover, and freeing through one allocator is required
//    because whoever frees a node did not allocate it).
// Waiting: a type parameter (WaitingPolicy.swift). `clh-stp` parks on its predecessor's `busy`
// (1 -> 2); the predecessor's release becomes an exchange that wakes it. Option `spin-limit`
// (LiTL: 2700 pauses).
// Layout: each node has its own 128-byte block; the tail has its own block.

import CShims

/// A CLH node: `busy` is 1 from its owner's lock until its owner's unlock.
@usableFromInline
struct CLHNode {
    @usableFromInline var busy: UInt32
}

/// `clh` (spinning) and `clh-stp` (spin-then-park, WaitingPolicy.swift).
public typealias CLHLock = CLH<SpinWaiting>
public typealias CLHSpinThenParkLock = CLH<SpinThenParkWaiting>

public struct CLH<Waiting: WaitingPolicy>: LockAlgorithm {
    public struct Context {
        /// The node this thread owns now: the one it will enqueue at its next lock.
        @usableFromInline var node: UnsafeMutablePointer<CLHNode>
        /// While holding: the predecessor's node, which becomes ours at unlock (stale otherwise).
        @usableFromInline var predecessor: UnsafeMutablePointer<CLHNode>?
    }

    public static var descriptor: LockDescriptor {
        LockDescriptor(
            name: "clh" + Waiting.nameSuffix, family: .queue, waiting: Waiting.kind,
            paper: "Craig 1993; Magnussen, Landin & Hagersten, IPPS 1994"
                + (Waiting.kind == .spin ? "" : "; spin-then-park as LiTL (Guiroux et al., ATC 2016)"),
            supportsTryLock: false, options: Waiting.options)
    }

    /// Tail of the implicit queue (a `CLHNode*`, never nil), alone on its block.
    @usableFromInline let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    @usableFromInline let memory: LabMemory
    /// clh-stp: pause iterations before parking (`spin-limit`); unused by clh.
    @usableFromInline let spinLimit: Int

    @usableFromInline static var nodeBytes: Int { LabMemory.paddedStride(of: CLHNode.self) }

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        spinLimit = Waiting.spinLimit(environment.options)
        tail = memory.allocate(bytes: LabMemory.alignment)
            .bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
        // The dummy: busy == 0 (zeroed), so the first locker enters at once.
        let dummy = memory.allocate(bytes: Self.nodeBytes)
        dummy.bindMemory(to: CLHNode.self, capacity: 1)
        // Plain store: no thread sees the lock yet.
        tail.pointee = dummy
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        let raw = memory.allocate(bytes: Self.nodeBytes)
        return Context(node: raw.bindMemory(to: CLHNode.self, capacity: 1), predecessor: nil)
    }

    public func freeContext(_ context: inout Context) {
        // The node we hold now: our own if we never locked, else an inherited predecessor node
        // whose former owner finished with it before our acquire read busy == 0.
        memory.deallocate(UnsafeMutableRawPointer(context.node), bytes: Self.nodeBytes)
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        let me = context.node
        let busy = UnsafeMutableRawPointer(me).assumingMemoryBound(to: UInt32.self)
        // Relaxed: published by the exchange's release below.
        cshims_u32_store_relaxed(busy, 1)
        // acq_rel: release publishes busy = 1 to the successor that finds our node in the tail;
        // acquire makes the predecessor node (its initialisation) visible to us.
        let predecessor = cshims_ptr_exchange_acq_rel(tail, UnsafeMutableRawPointer(me))
            .unsafelyUnwrapped.assumingMemoryBound(to: CLHNode.self)
        let predecessorBusy = UnsafeMutableRawPointer(predecessor).assumingMemoryBound(to: UInt32.self)
        // Wait while busy == 1 (stp: park on it, 1 -> 2). Acquire: pairs with the predecessor's
        // release of busy = 0.
        _ = Waiting.wait(on: predecessorBusy, while: 1, spinLimit: spinLimit)
        context.predecessor = predecessor
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        let me = context.node
        // Release: the critical section happens-before the successor's acquire of busy == 0. After
        // this store our node belongs to the successor (or to the tail): we never touch it again.
        // stp: an exchange, waking the successor if it parked on our node.
        Waiting.grant(UnsafeMutableRawPointer(me).assumingMemoryBound(to: UInt32.self), 0)
        context.node = context.predecessor.unsafelyUnwrapped
    }

    public func deallocate() {
        // All threads are done: the tail node is owned by the lock alone (see the invariants).
        let last = tail.pointee!
        memory.deallocate(last, bytes: Self.nodeBytes)
        memory.deallocate(UnsafeMutableRawPointer(tail), bytes: LabMemory.alignment)
    }
}
