// MCSQueue: the MCS queue on a tail word and per-thread nodes, shared by mcs and mcs-stp, the cohort
// locks' per-node and global queues (c-bo-mcs, c-mcs-mcs), hmcs's levels and H-Synch's global lock.
//
// Paper: J. M. Mellor-Crummey, M. L. Scott, "Algorithms for Scalable Synchronization on
// Shared-Memory Multiprocessors", ACM TOCS 9(1), 1991. Linux keeps the same queue apart from its users
// in kernel/locking/mcs_spinlock.h.
// Invariants (the spin model Models/mcs.pml checks them; its line numbers are this file's):
//  - tail == nil iff the queue is empty; the head's owner holds whatever the queue guards;
//  - a waiter waits only on its own node's `locked` word, which only its predecessor writes (the
//    grant), with release; the waiter reads it with acquire;
//  - a node's `next` is written once per acquisition by its successor (release) and read by its owner.

import CShims

/// An MCS queue node. `locked` is 1 (hmcs: WAIT) while the owner must wait, then the grant; `next` the successor.
@usableFromInline
struct MCSNode {
    @usableFromInline var next: UnsafeMutableRawPointer?
    @usableFromInline var locked: UInt32
}

/// The MCS queue operations on a tail word and an `MCSNode`: `mcs` itself, the cohort locks' queues
/// and hmcs's two levels (whose grant is a value: `waitValue`, `grant`) use these one definitions.
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

    /// Enqueues `me` on `tail`, waits as `W` says until it is the head; returns what it was granted.
    @inline(__always) @discardableResult
    static func acquire<W: WaitingPolicy>(_ me: UnsafeMutableRawPointer, tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                                          waiting: W.Type, waitValue: UInt32 = 1, freeValue: UInt32 = 0, spinLimit: Int = SpinThenParkWaiting.defaultSpinLimit) -> UInt32 {
        let locked = lockedField(me)
        cshims_ptr_store_relaxed(nextField(me), nil)
        cshims_u32_store_relaxed(locked, waitValue)
        // acq_rel: release publishes our initialised node to the successor that will find it via
        // the tail; acquire pairs with the previous holder's release if we find the lock free.
        guard let predecessor = cshims_ptr_exchange_acq_rel(tail, me) else { return freeValue }
        // Link behind the predecessor; release so it sees our `locked = waitValue` before it hands over.
        cshims_ptr_store_release(nextField(predecessor), me)
        // Wait on our own line while locked == waitValue; acquire pairs with the predecessor's grant.
        return W.wait(on: locked, while: waitValue, spinLimit: spinLimit)
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
                                          waiting: W.Type, grant: UInt32 = 0) {
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
        W.grant(lockedField(successor!), grant)
    }

    /// Hands the head `me` of a queue on to a successor known to exist (the tail has moved off
    /// `me`): no tail CAS, which would fail. The cohort locks' local handover after cohort detection.
    @inline(__always)
    static func handOver(_ me: UnsafeMutableRawPointer, grant: UInt32 = 0) {
        var successor = cshims_ptr_load_acquire(nextField(me))
        // It may have swapped the tail but not linked yet: wait for its link.
        while successor == nil {
            cshims_pause()
            successor = cshims_ptr_load_acquire(nextField(me))
        }
        // Release: the critical section (and what the caller wrote for the successor, such as a
        // cohort record) happens-before the successor's acquire load of its `locked` word.
        cshims_u32_store_release(lockedField(successor!), grant)
    }
}
