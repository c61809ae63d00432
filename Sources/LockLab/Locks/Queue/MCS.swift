// mcs, mcs-stp: the Mellor-Crummey & Scott queue lock, spinning or spin-then-park (WaitingPolicy).
//
// Paper: J. M. Mellor-Crummey, M. L. Scott, "Algorithms for Scalable Synchronization on
// Shared-Memory Multiprocessors", ACM TOCS 9(1), 1991.
// Idea: the lock is a tail pointer to a queue of per-thread nodes. A thread swaps its node into the
// tail, links itself behind its predecessor and spins on its own node; release hands to `next`.
// Invariants:
//  - tail == nil iff the lock is free and no thread is queued;
//  - exactly one queued node, the head, belongs to the holder; every other waiter spins on its own
//    node's `locked` word, which only its predecessor writes;
//  - a node is reused only after its owner's unlock has returned (the harness's per-thread context).
// Waiting: a type parameter. `mcs` spins on `locked`; `mcs-stp` (LiTL's MCS-STP) spins a while, then
// parks on `locked` (1 -> 2) and the releaser's handover becomes an exchange that wakes it
// (WaitingPolicy.swift).
// Layout: each node is padded to 128 bytes; the tail has its own 128-byte block.

import CShims

/// An MCS queue node. `locked` is 1 while the owner must wait; `next` is the successor.
@usableFromInline
struct MCSNode {
    @usableFromInline var next: UnsafeMutableRawPointer?
    @usableFromInline var locked: UInt32
}

/// `mcs` (spinning) and `mcs-stp` (spin-then-park).
public typealias MCSLock = MCS<SpinWaiting>
public typealias MCSSpinThenParkLock = MCS<SpinThenParkWaiting>

public struct MCS<Waiting: WaitingPolicy>: LockAlgorithm {
    public struct Context {
        @usableFromInline let node: UnsafeMutablePointer<MCSNode>
    }

    public static var descriptor: LockDescriptor {
        LockDescriptor(
            name: "mcs" + Waiting.nameSuffix, family: .queue, waiting: Waiting.kind,
            paper: Waiting.kind == .spin ? "Mellor-Crummey & Scott, ACM TOCS 1991"
                : "Mellor-Crummey & Scott, ACM TOCS 1991; spin-then-park as LiTL (Guiroux et al., ATC 2016)",
            supportsTryLock: true)
    }

    /// Tail of the waiter queue (a `MCSNode*`), alone on its block.
    @usableFromInline let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        tail = memory.allocate(bytes: LabMemory.alignment)
            .bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        // Local memory: the node is touched first by its own thread, after pinning.
        let raw = LabMemory().allocatePadded(MCSNode.self)
        return Context(node: raw.bindMemory(to: MCSNode.self, capacity: 1))
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(UnsafeMutableRawPointer(context.node), bytes: LabMemory.paddedStride(of: MCSNode.self))
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        MCSQueue.acquire(UnsafeMutableRawPointer(context.node), tail: tail, waiting: Waiting.self)
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        MCSQueue.tryAcquire(UnsafeMutableRawPointer(context.node), tail: tail)
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        MCSQueue.release(UnsafeMutableRawPointer(context.node), tail: tail, waiting: Waiting.self)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(tail), bytes: LabMemory.alignment)
    }
}

/// The MCS queue operations on a tail word and an `MCSNode`: `mcs` itself, and the per-node (and
/// global) queues of the cohort locks, use these one definitions.
@usableFromInline
enum MCSQueue {
    @inline(__always)
    static func nextField(_ node: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (node + MemoryLayout<MCSNode>.offset(of: \MCSNode.next)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }

    @inline(__always)
    static func lockedField(_ node: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt32> {
        (node + MemoryLayout<MCSNode>.offset(of: \MCSNode.locked)!).assumingMemoryBound(to: UInt32.self)
    }

    /// Enqueues `me` on `tail` and waits (spinning) until it is the head.
    @inline(__always)
    static func acquire(_ me: UnsafeMutableRawPointer, tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>) {
        acquire(me, tail: tail, waiting: SpinWaiting.self)
    }

    /// Enqueues `me` on `tail` and waits, as `W` says, until it is the head.
    @inline(__always)
    static func acquire<W: WaitingPolicy>(_ me: UnsafeMutableRawPointer, tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                                          waiting: W.Type) {
        let locked = lockedField(me)
        cshims_ptr_store_relaxed(nextField(me), nil)
        cshims_u32_store_relaxed(locked, 1)
        // acq_rel: release publishes our initialised node to the successor that will find it via
        // the tail; acquire pairs with the previous holder's release if we find the lock free.
        guard let predecessor = cshims_ptr_exchange_acq_rel(tail, me) else { return }
        // Link behind the predecessor; release so it sees our `locked = 1` before it can hand over.
        cshims_ptr_store_release(nextField(predecessor), me)
        // Wait on our own line while locked == 1; acquire pairs with the predecessor's handover.
        _ = W.wait(on: locked, while: 1)
    }

    /// Takes `tail` only if its queue is empty: we become head and holder at once.
    @inline(__always)
    static func tryAcquire(_ me: UnsafeMutableRawPointer, tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> Bool {
        cshims_ptr_store_relaxed(nextField(me), nil)
        // acq_rel: publish our node to later arrivals; order after the last release.
        return cshims_ptr_cas_value_acq_rel(tail, nil, me)
    }

    /// Releases the head `me` of `tail`'s queue (spinning waiters).
    @inline(__always)
    static func release(_ me: UnsafeMutableRawPointer, tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>) {
        release(me, tail: tail, waiting: SpinWaiting.self)
    }

    /// Releases the head `me` of `tail`'s queue; returns once nobody will touch `me` again.
    @inline(__always)
    static func release<W: WaitingPolicy>(_ me: UnsafeMutableRawPointer, tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                                          waiting: W.Type) {
        var successor = cshims_ptr_load_acquire(nextField(me))
        if successor == nil {
            // No visible successor: swing the tail back to empty (release: our critical section
            // happens-before the next acquirer's exchange). The CAS takes `me` by value, so no
            // local's address is taken (no stack-protector check on this path).
            if cshims_ptr_cas_value_release(tail, me, nil) { return }
            // A thread swapped the tail but has not linked yet: wait for its link.
            repeat {
                cshims_pause()
                successor = cshims_ptr_load_acquire(nextField(me))
            } while successor == nil
        }
        // Hand over: release orders our critical section before the successor's acquire load
        // (stp: an exchange, waking the successor if it parked).
        W.grant(lockedField(successor!), 0)
    }
}
