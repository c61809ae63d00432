// mcs: the Mellor-Crummey & Scott queue lock.
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
// Layout: each node is padded to 128 bytes; the tail has its own 128-byte block.

import CShims

/// An MCS queue node. `locked` is 1 while the owner must wait; `next` is the successor.
@usableFromInline
struct MCSNode {
    @usableFromInline var next: UnsafeMutableRawPointer?
    @usableFromInline var locked: UInt32
}

public struct MCSLock: LockAlgorithm {
    public struct Context {
        @usableFromInline let node: UnsafeMutablePointer<MCSNode>
    }

    public static let descriptor = LockDescriptor(
        name: "mcs", family: .queue, waiting: .spin,
        paper: "Mellor-Crummey & Scott, ACM TOCS 1991",
        supportsTryLock: true)

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
        let me = context.node
        let nextField = UnsafeMutableRawPointer(me).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
        let lockedField = UnsafeMutableRawPointer(me) + MemoryLayout<MCSNode>.offset(of: \MCSNode.locked)!
        let locked = lockedField.assumingMemoryBound(to: UInt32.self)
        cshims_ptr_store_relaxed(nextField, nil)
        cshims_u32_store_relaxed(locked, 1)
        // acq_rel: release publishes our initialised node to the successor that will find it via
        // the tail; acquire pairs with the previous holder's release if we find the lock free.
        let predecessor = cshims_ptr_exchange_acq_rel(tail, UnsafeMutableRawPointer(me))
        guard let predecessor else { return }
        // Link behind the predecessor; release so it sees our `locked = 1` before it can hand over.
        cshims_ptr_store_release(predecessor.assumingMemoryBound(to: UnsafeMutableRawPointer?.self),
                                 UnsafeMutableRawPointer(me))
        // Spin on our own line; acquire pairs with the predecessor's handover store.
        while cshims_u32_load_acquire(locked) != 0 {
            cshims_pause()
        }
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        let me = context.node
        let nextField = UnsafeMutableRawPointer(me).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
        cshims_ptr_store_relaxed(nextField, nil)
        // Only succeeds on an empty queue: we become head and holder at once.
        return cshims_ptr_cas_value_acq_rel(tail, nil, UnsafeMutableRawPointer(me))
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        let me = UnsafeMutableRawPointer(context.node)
        let nextField = me.assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
        var successor = cshims_ptr_load_acquire(nextField)
        if successor == nil {
            // No visible successor: try to swing the tail back to empty (release: our critical
            // section happens-before the next acquirer's exchange).
            if cshims_ptr_cas_value_release(tail, me, nil) { return }
            // A thread swapped the tail but has not linked yet: wait for its link.
            repeat {
                cshims_pause()
                successor = cshims_ptr_load_acquire(nextField)
            } while successor == nil
        }
        // Hand over: release orders our critical section before the successor's acquire load.
        let lockedOffset = MemoryLayout<MCSNode>.offset(of: \MCSNode.locked)!
        cshims_u32_store_release((successor! + lockedOffset).assumingMemoryBound(to: UInt32.self), 0)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(tail), bytes: LabMemory.alignment)
    }
}
