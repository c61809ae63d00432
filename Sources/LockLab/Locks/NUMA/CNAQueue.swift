// CNAQueue: the secondary queue of the compact NUMA-aware lock, one copy for `cna` (CNA.swift) and
// `qspinlock-cna` (QSpinlockCNA.swift).
//
// Paper: D. Dice, A. Kogan, "Compact NUMA-aware Locks", EuroSys 2019, section 3 (find_successor);
// representation and names as A. Kogan, D. Dice, NUMA_AWARE_SPINLOCKS v15 (LKML, May 2021),
// kernel/locking/qspinlock_cna.h (cna_splice_tail, cna_splice_head).
// Idea: waiters of other NUMA nodes that the lock passes over are moved, in order, from the main MCS
// queue to a secondary queue that travels with the lock and is spliced back in front later.
// Representation (the kernel's): circular and named by its tail E, whose `next` is its first node
// S; a queue of one node points at itself. Here a name is `Node?` (nil: empty); each lock stores it
// where its holder reads it: `cna` in the holder's `spin` (E's address; 1 empty), `qspinlock-cna`
// in the head's `locked` (E's encoded tail; 1 empty).
// Operations (S..E the secondary queue, F..L a run of main-queue waiters, N a main-queue node):
//   append(F..L):       S..E            -> S..E F..L         returns L, the new name (cna_splice_tail)
//   findSameNode(N):    N R1..Rk L ..   -> L ..; S..E R1..Rk  returns L and the new name (find_successor)
//   spliceFront(N):     S..E; N ..      -> S..E N ..         returns S (cna_splice_head, with N)
//   detach / reattach:  E.next = nil before E becomes the main queue's tail by the caller's CAS; the
//                       circle closed again if that CAS fails (cna_splice_head, without N).
// When to move waiters and when to splice back (the fairness policy) stays in each lock: the paper's
// holder scans at release (findSameNode) and flushes by keep_lock_local; v15's head moves one waiter
// at a time while it waits (append) and flushes by age.
// Invariants:
//  - only the one thread that owns the lock's queue state (cna: the holder; qspinlock-cna: the queue
//    head) calls these; it owns every node of the secondary queue and the `next` links it writes, so
//    the edits are relaxed; the release that grants the lock or head position publishes them, and
//    the secondary queue's name travels with that grant;
//  - a named secondary queue is a circle: from E, `next` visits each parked node once and returns;
//  - a run F..L is moved only if L has a main-queue successor, so the main queue's tail is never
//    moved and no arrival is linking behind a moved node (nobody else writes L.next);
//  - FIFO: runs keep their order and go behind those parked earlier; the queue goes back whole.
// Hot path: none of it is on an uncontended acquire or release; every operation is generic over the
// node pointer type and inlined into its lock's (out-of-line) slow path, no existential or closure.

import CShims

/// A queue node pointer the secondary queue can link: `next` and the node's NUMA node id.
@usableFromInline
protocol CNAQueueNode {
    init(_ raw: UnsafeMutableRawPointer)
    var raw: UnsafeMutableRawPointer { get }
    /// Main-queue successor; in the secondary queue, the next parked node (the first, from the tail).
    var next: UnsafeMutablePointer<UnsafeMutableRawPointer?> { get }
    /// The NUMA node a waiter is on (qspinlock-cna's head: the node it prefers).
    var numaNode: UnsafeMutablePointer<UInt32> { get }
}

/// The secondary-queue operations over one node type (a namespace; nothing is stored).
@usableFromInline
enum CNAQueue<Node: CNAQueueNode> {
    /// S..E -> S..E F..L: moves the run first..last (linked, first to last, already cut out of the
    /// main queue by the caller or about to be) behind the parked waiters; returns last, the queue's
    /// new name. `tail` nil: the run becomes the secondary queue.
    @inline(__always) @usableFromInline
    static func append(first: Node, last: Node, to tail: Node?) -> Node {
        if let tail {
            let head = cshims_ptr_load_relaxed(tail.next)
            cshims_ptr_store_relaxed(tail.next, first.raw)
            cshims_ptr_store_relaxed(last.next, head)
        } else {
            cshims_ptr_store_relaxed(last.next, first.raw)
        }
        return last
    }

    /// find_successor: the first main-queue waiter from `next` on NUMA node `node`, and the
    /// secondary queue's name once the remote waiters skipped on the way are appended to it; nil
    /// (nothing moved) if none is queued.
    @inline(__always) @usableFromInline
    static func findSameNode(after next: Node, on node: UInt32, secondaryTail: Node?)
        -> (successor: Node, secondaryTail: Node?)?
    {
        // Node ids were written before each node was published; we reached every node through an
        // acquire load of a `next` link, so relaxed loads see them.
        if cshims_u32_load_relaxed(next.numaNode) == node { return (next, secondaryTail) }
        var lastSkipped = next
        // Acquire: pairs with each waiter's release link, so its node is initialised.
        var candidate = cshims_ptr_load_acquire(next.next)
        while let raw = candidate {
            let waiter = Node(raw)
            if cshims_u32_load_relaxed(waiter.numaNode) == node {
                // next..lastSkipped leave the main queue. lastSkipped has a successor (waiter), so
                // nobody else writes its `next` any more; none of them is the tail.
                return (waiter, append(first: next, last: lastSkipped, to: secondaryTail))
            }
            lastSkipped = waiter
            candidate = cshims_ptr_load_acquire(waiter.next)
        }
        return nil
    }

    /// S..E; N.. -> S..E N..: the secondary queue goes back in front of `next`; returns S, which
    /// the caller grants (the queue is empty after).
    @inline(__always) @usableFromInline
    static func spliceFront(_ tail: Node, before next: Node) -> Node {
        let head = Node(cshims_ptr_load_relaxed(tail.next).unsafelyUnwrapped)
        cshims_ptr_store_relaxed(tail.next, next.raw)
        return head
    }

    /// Opens the circle (E.next = nil) before the caller's CAS makes E the main queue's tail, so an
    /// arrival that links behind E sees nil first (the CAS is a release); returns S.
    @inline(__always) @usableFromInline
    static func detach(_ tail: Node) -> Node {
        let head = Node(cshims_ptr_load_relaxed(tail.next).unsafelyUnwrapped)
        cshims_ptr_store_relaxed(tail.next, nil)
        return head
    }

    /// Closes the circle again after the caller's CAS failed (E never became the tail).
    @inline(__always) @usableFromInline
    static func reattach(_ tail: Node, head: Node) {
        cshims_ptr_store_relaxed(tail.next, head.raw)
    }
}
