// qspinlock-cna: the Linux queued spinlock with the CNA slow path (NUMA_AWARE_SPINLOCKS), as v15.
//
// Source: A. Kogan, D. Dice, "Add NUMA-awareness to qspinlock", v15, LKML, 14 May 2021 (never
// merged), kernel/locking/qspinlock_cna.h as patches 3/6 (the CNA slow path: cna_order_queue,
// cna_splice_next, cna_splice_head, cna_try_clear_tail, cna_lock_handoff;
// <20210514200743.3026725-4-alex.kogan@oracle.com>), 4/6 (starvation avoidance: start_time,
// numa_spinlock_threshold_ns, intra_node_threshold_reached, FLUSH_SECONDARY_QUEUE; -5) and 6/6
// (shuffle reduction: SHUFFLE_REDUCTION_PROB_ARG, probably(), the per-CPU seed; -7) leave it. The
// algorithm: D. Dice, A. Kogan, "Compact NUMA-aware Locks", EuroSys 2019 (the paper's form is `cna`).
// Idea: qspinlock (QSpinlock.swift) unchanged on the word and the fast and pending paths; only the
// MCS queue is reordered. The queue head, while it waits for the owner and pending waiter to go
// away, moves waiters of other NUMA nodes from behind itself to a secondary queue, so that the
// next head is on the preferred node; the secondary queue travels with the head position and is
// spliced back in front when no waiter is left in the main queue or when it is older than
// `threshold-ns`. Unlike `cna` (the paper's: the holder scans at release), the work happens at the
// head while it would spin anyway, off the critical path.
// The secondary queue is circular and named by its tail: the head's `locked` holds 1 (empty) or the
// encoded tail of the secondary queue's last node, whose `next` is the secondary queue's first.
// Transitions, (main queue behind head H; secondary queue) as the patch's comments, N next, N2 after:
//   H sorts, N remote, N2 exists:    H N N2 ..; S..E  -> H N2 ..; S..E N       (cna_splice_next)
//   H sorts, N local (or no N2):     unchanged, stop sorting                    (cna_order_queue)
//   H last queued, nothing parked:   tail H, 0,0 -> 0,0,1                       (cna_try_clear_tail)
//   H last queued, S..E parked:      tail H, 0,0 -> tail E, 0,1; S is head     (cna_splice_head, CAS)
//   hand-off, parked, not too old:   N is head, inherits S..E, node and time    (cna_lock_handoff)
//   hand-off, threshold passed:      S..E spliced before N; S is head, empty    (cna_splice_head)
//   hand-off, nothing parked:        N is head (MCS)
// Defaults, each the v15 patch's:
//  - threshold-ns = 1 ms: `static ulong numa_spinlock_threshold_ns = 1000000; /* 1ms, by default */`
//    (patch 4/6; boot parameter qspinlock.numa_spinlock_threshold_ns); a head that inherits a
//    secondary queue older than that flushes it at its hand-off (cna_wait_head_or_lock);
//  - shuffle-reduction-bits = 7: `#define SHUFFLE_REDUCTION_PROB_ARG (7)` (patch 6/6); with an empty
//    secondary queue the head skips sorting unless probably() returns false, probability 2^-7:
//    it skips with probability 127/128. probably() steps next_pseudo_random32 (s * 1664525 +
//    1013904223) on a per-CPU seed that starts at 0 (DEFINE_PER_CPU, zero-initialised); here the
//    thread's node carries it, from 0 too (QSpinlock.makeContext). 0: always sort.
// The other reference, the paper's holder-side scan with a 2^-16 random flush, is `cna`.
// Oversubscribed (more threads than CPUs), the sorting mostly does not happen: the head sorts only
// while it runs and the lock is busy, as in the kernel, where spinning waiters are never preempted.
// With virtual nodes on 2 CPUs a same-node waiter shares the holder's CPU, so it runs only after the
// holder has let go, and the head that does run beside a holder is on the other node; at 8 threads
// the same-node handover fraction is then qspinlock's (0.46-0.60) within noise, where `cna`, whose
// holder chooses at release, reaches 1.0. Sorting every time with no age limit does not change it.
// Left out: the patch's priority node (CNA_PRIORITY_NODE, for irq, NMI and real-time contexts: the
// lab's threads are all plain tasks) and its paravirt interplay.
// Invariants:
//  - only the queue head reads or writes the secondary queue, its nodes' `next` and its own `next`
//    after a successor linked; all of it passes to the next head with the release of its `locked`;
//  - a waiter is moved only if it has a successor, so the main queue's tail is never moved and no
//    arrival is linking behind a moved node;
//  - the word's tail names the main queue's last node; when the main queue empties with waiters
//    parked, one CAS makes the secondary queue's last node the tail while taking the lock.
// Reuse: the word, fast path, pending path and queue are qspinlock's (QSpinlock<QSpinlockCNA>); the
// CNA policy is these hooks. The secondary queue is CNAQueue's (CNAQueue.swift, one copy with `cna`):
// this lock takes append (cna_splice_next's move of one waiter), spliceFront (cna_splice_head with a
// successor) and detach/reattach (cna_splice_head without one, around its tail CAS); the one-step
// sort while waiting (cna_order_queue), the age and shuffle-reduction rules and the encoding of the
// queue's name in `locked` stay here.

import CShims

public typealias QSpinlockCNALock = QSpinlock<QSpinlockCNA>

extension QSpinlockNodePointer: CNAQueueNode {}

public struct QSpinlockCNA: QSpinlockSlowPath {
    @usableFromInline typealias Queue = CNAQueue<QSpinlockNodePointer>

    public static var name: String { "qspinlock-cna" }
    public static var family: LockFamily { .numa }
    public static var paper: String { "Kogan & Dice, NUMA_AWARE_SPINLOCKS v15 (LKML, May 2021), qspinlock_cna.h of patches 3/6, 4/6 (numa_spinlock_threshold_ns 1 ms), 6/6 (SHUFFLE_REDUCTION_PROB_ARG 7: head sorts with probability 1/128 while nothing is parked); Dice & Kogan, EuroSys 2019" }
    public static var options: [LockOptionSpec] {
        [
            LockOptionSpec("threshold-ns", default: 1_000_000,
                           help: "splice the secondary queue back once it is this old, ns (v15 numa_spinlock_threshold_ns: 1 ms)"),
            LockOptionSpec("shuffle-reduction-bits", default: 7, range: 0...16,
                           help: "with nothing parked, the head skips sorting with probability 1 - 2^-bits (v15: 7; 0: always sort)"),
        ]
    }

    /// `startTime` meaning "flush the secondary queue at hand-off" (FLUSH_SECONDARY_QUEUE).
    @usableFromInline static var flushSecondary: UInt64 { 1 }

    @usableFromInline let thresholdCycles: UInt64
    @usableFromInline let reductionMask: UInt32

    public init(_ environment: LockEnvironment) {
        thresholdCycles = CycleClock.cycles(nanoseconds: environment.options.int("threshold-ns"))
        reductionMask = (UInt32(1) << UInt32(environment.options.int("shuffle-reduction-bits"))) &- 1
    }

    /// cna_init_node: the preferred node is our own; no secondary queue formed by us yet.
    @inline(__always)
    public func initNode(_ node: QSpinlockNodePointer) {
        cshims_u32_store_relaxed(node.numaNode, cshims_u32_load_relaxed(node.realNumaNode))
        cshims_u64_store_relaxed(node.startTime, 0)
    }

    /// probably(): true with probability 1 - 2^-bits (next_pseudo_random32, the kernel's LCG).
    @inline(__always) @usableFromInline
    func probably(_ node: QSpinlockNodePointer) -> Bool {
        let seed = cshims_u32_load_relaxed(node.seed) &* 1_664_525 &+ 1_013_904_223
        cshims_u32_store_relaxed(node.seed, seed)
        return seed & reductionMask != 0
    }

    /// cna_wait_head_or_lock: sort the queue while the lock is busy, or decide to flush.
    public func waitHeadOrLock(_ lock: QSpinlockWord, _ node: QSpinlockNodePointer) {
        // Only the head touches its own locked and startTime now (relaxed).
        if cshims_u32_load_relaxed(node.locked) <= 1 && probably(node) { return }
        let start = cshims_u64_load_relaxed(node.startTime)
        // intra_node_threshold_reached() is `local_clock() > start_time + threshold`; written as
        // elapsed time (wrap-safe, as `cna` does), so that the saturated threshold (the option's
        // maximum: "never") cannot wrap `start + threshold` below `start` and flush at once.
        if start == 0 || cshims_cycles() &- start <= thresholdCycles {
            // Put the time otherwise spent spinning on locked+pending to use.
            while cshims_u32_load_relaxed(lock.word) & QSpinlockLayout.lockedPendingMask != 0
                && !orderQueue(lock, node) {
                cshims_pause()
            }
        } else {
            cshims_u64_store_relaxed(node.startTime, Self.flushSecondary)
        }
    }

    /// cna_order_queue: true if the next waiter is on the preferred node; otherwise moves it to the
    /// secondary queue if it has a successor, and returns false.
    @usableFromInline
    func orderQueue(_ lock: QSpinlockWord, _ node: QSpinlockNodePointer) -> Bool {
        // Acquire: the waiter's node, through its release link.
        guard let nextRaw = cshims_ptr_load_acquire(node.next) else { return false }
        let next = QSpinlockNodePointer(nextRaw)
        if cshims_u32_load_relaxed(next.numaNode) != cshims_u32_load_relaxed(node.numaNode) {
            if let nnext = cshims_ptr_load_acquire(next.next) {
                spliceNext(lock, node, next, QSpinlockNodePointer(nnext))
            }
            return false
        }
        return true
    }

    /// cna_splice_next: H N N2 -> H N2, N appended to the (circular) secondary queue.
    @usableFromInline
    func spliceNext(_ lock: QSpinlockWord, _ node: QSpinlockNodePointer, _ next: QSpinlockNodePointer,
                    _ nnext: QSpinlockNodePointer) {
        // Nobody else writes node.next (it has a successor) or next.next (it has one too).
        cshims_ptr_store_relaxed(node.next, nnext.raw)
        let locked = cshims_u32_load_relaxed(node.locked)
        if locked <= 1 {
            // The secondary queue is formed now: its age starts.
            cshims_u64_store_relaxed(node.startTime, max(cshims_cycles(), Self.flushSecondary + 1))
        }
        let tail2 = Queue.append(first: next, last: next, to: locked <= 1 ? nil : lock.decode(locked))
        cshims_u32_store_relaxed(node.locked, cshims_u32_load_relaxed(tail2.encodedTail))
    }

    /// cna_splice_head: the secondary queue goes in front of `next` (or, with no `next`, becomes
    /// the main queue, taking the lock by CAS from `value`); returns its first node, or nil if
    /// the CAS failed (a waiter arrived).
    @usableFromInline
    func spliceHead(_ lock: QSpinlockWord, _ value: UInt32, _ node: QSpinlockNodePointer,
                    _ next: QSpinlockNodePointer?) -> QSpinlockNodePointer? {
        let tail2 = lock.decode(cshims_u32_load_relaxed(node.locked))
        if let next { return Queue.spliceFront(tail2, before: next) }
        // Break the circle first: once the CAS makes tail2 the tail, an arrival links behind it.
        let head2 = Queue.detach(tail2)
        let new = cshims_u32_load_relaxed(tail2.encodedTail) | QSpinlockLayout.lockedValue
        // tail H,0,0 -> tail E,0,1. Release: an arrival that finds E in the tail (acquire
        // exchange) must see E.next == nil before it links.
        if !cshims_u32_cas_value_release(lock.word, value, new) {
            Queue.reattach(tail2, head: head2)
            return nil
        }
        return head2
    }

    /// cna_try_clear_tail.
    public func tryClearTail(_ lock: QSpinlockWord, _ value: UInt32, _ node: QSpinlockNodePointer) -> Bool {
        if cshims_u32_load_relaxed(node.locked) > 1 {
            // Parked waiters: they become the main queue, their first is the head.
            guard let head2 = spliceHead(lock, value, node, nil) else { return false }
            // Release: the new head reads the queue we left it.
            cshims_u32_store_release(head2.locked, 1)
            return true
        }
        // Both queues empty: n,0,0 -> 0,0,1 (relaxed, as qspinlock's: we acquired by the load).
        return cshims_u32_cas_value_relaxed(lock.word, value, QSpinlockLayout.lockedValue)
    }

    /// cna_lock_handoff.
    public func passLock(_ lock: QSpinlockWord, _ node: QSpinlockNodePointer, _ next: QSpinlockNodePointer) {
        var successor = next
        var value: UInt32 = 1
        let start = cshims_u64_load_relaxed(node.startTime)
        if start != Self.flushSecondary {
            let locked = cshims_u32_load_relaxed(node.locked)
            if locked > 1 {
                // Keep the secondary queue; reload next, which sorting may have changed.
                value = locked
                successor = QSpinlockNodePointer(cshims_ptr_load_acquire(node.next).unsafelyUnwrapped)
                // Pass the preferred node and the queue's age on (published by the release below).
                cshims_u32_store_relaxed(successor.numaNode, cshims_u32_load_relaxed(node.numaNode))
                cshims_u64_store_relaxed(successor.startTime, start)
            }
        } else {
            // Threshold passed: splice the secondary queue in front; its eldest is the next head.
            successor = spliceHead(lock, 0, node, next).unsafelyUnwrapped
        }
        // Release: the queue state before the new head's acquire of its `locked`.
        cshims_u32_store_release(successor.locked, value)
    }
}
