// cna: the compact NUMA-aware lock, as the paper gives it.
//
// Paper: D. Dice, A. Kogan, "Compact NUMA-aware Locks", EuroSys 2019 (arXiv 1810.05600), section 3
// and its pseudo-code (cna_lock, cna_unlock, find_successor, keep_lock_local). The kernel's form,
// the qspinlock slow path of the NUMA_AWARE_SPINLOCKS patch series (v15, 2021), is `qspinlock-cna`
// (QSpinlockCNA.swift).
// Idea: MCS whose queue nodes carry their thread's NUMA node. At release the holder looks down the
// main queue for a waiter on its own node and hands it the lock, moving the remote waiters it skipped
// to a secondary queue; that queue goes back in front when no local waiter is left or the holder
// decides not to keep the lock local, and the lock moves to the node of its head.
// The lock is one word, `tail`, as in MCS. The secondary queue lives in the nodes and its
// operations are CNAQueue's (CNAQueue.swift), shared with qspinlock-cna: circular, named by its last
// node E (E.next is its first, S). The holder's `spin` holds E's address (1 when nothing is parked),
// and every handoff passes `spin` on to the next holder. (The paper names the queue by its head and
// keeps the tail in the head's node; the grants are the same.)
// From CNAQueue this lock takes: findSameNode (the paper's find_successor, at release), spliceFront
// (flush in front of N), detach/reattach (the parked waiters become the main queue). Its own: the
// word, the grants, keep_lock_local and the option thresholds.
// Transitions, written (tail, holder's spin, secondary queue) as in kernel/locking/qspinlock.c; `me`
// is the releasing holder, N its main-queue successor, S..E the secondary queue:
//   lock, free:                      nil,-,-   -> me,1,-             exchange
//   lock, busy:                      T,*,*     -> me,*,*             exchange, link behind T, spin on own node
//   tryLock:                         nil,-,-   -> me,1,-             CAS from nil only
//   unlock, alone:                   me,1,-    -> nil,-,-            CAS
//   unlock, alone, S..E parked:      me,E,S..E -> E,1,-              detach, CAS; S holds (its queue is the main queue)
//   unlock, local waiter L found past remote R1..Rk:
//                                    *,e,S..E  -> *,Rk,S..E R1..Rk   L holds, spin = tail of the new queue
//   unlock, none local or flush:     *,E,S..E  -> *,1,-              S holds; S..E spliced in front of N
//   unlock, none local, none parked: *,1,-     -> *,1,-              N holds (MCS)
// Invariants (and CNAQueue's):
//  - tail == nil iff the lock is free and nobody waits; the secondary queue is non-empty only while
//    the lock is held (the holder's spin names it), so a free lock parks nobody;
//  - a node's spin is 0 while its owner waits and is written once per acquisition, with release, by
//    the thread that grants the lock; only the holder reads its own spin;
//  - only the holder touches the secondary queue and the `next` links of its nodes; a node is moved
//    there only if it has a main-queue successor, so the main queue's tail is never moved;
//  - skipped waiters keep their order and go behind those parked earlier (FIFO within the secondary
//    queue); a node is reused only after its owner's unlock has returned.
// Fairness, defaults the paper's: at every release with a successor the holder draws
// keep_lock_local(), `pseudo_rand() & THRESHOLD` with THRESHOLD = 0xffff: the lock stays local
// unless the low `keep-local-bits` = 16 bits are all 0, so the secondary queue is flushed with
// probability 2^-16 per release, with no count and no time limit. The paper does not name its
// generator: here a per-thread xorshift32 (13/17/5, Marsaglia 2003), seeded with the thread index + 1.
// keep-local-bits=0: the lock never stays local (MCS order).
// Other references, by option (both off by default, 0; both count only while the secondary queue is
// non-empty and travel with the lock in the successor's node, written before the release of its spin):
//  - `threshold`: splice back after this many same-node handoffs past parked waiters (the patch
//    series up to v10, 2020: intra_node_handoff_threshold = 1 << 16, counted as `localHandoffs`);
//  - `threshold-ns`: splice back once the secondary queue is this old, read from the cycle counter
//    (v13-v15: numa_spinlock_threshold_ns = 1 ms, `secondarySinceCycles`).
// The kernel's other rules (the queue head sorts while it waits, skipping with probability 127/128
// while nothing is parked) are qspinlock-cna's; here, as in the paper, the holder scans at release.
// Waiting: a type parameter (WaitingPolicy.swift). `cna-stp` parks on the low 32 bits of `spin`
// (0 -> 2) and every grant of `spin` becomes an exchange that wakes a parked waiter, in the main or
// the secondary queue alike.
// Layout: each node is padded to 128 bytes; the tail has its own 128-byte block.

import CShims

/// A CNA queue node.
@usableFromInline
struct CNANode {
    /// Main-queue successor; in the secondary queue, the next parked node (at its tail: its first).
    @usableFromInline var next: UnsafeMutableRawPointer?
    /// 0 while waiting; once granted, 1 (nothing parked) or the address of the secondary queue's tail.
    @usableFromInline var spin: UInt64
    /// Cycle counter reading when the secondary queue the holder inherits was formed (spin > 1 only).
    @usableFromInline var secondarySinceCycles: UInt64
    /// The owner's NUMA node (ThreadSlot.node), written once when the context is made.
    @usableFromInline var numaNode: UInt32
    /// Same-node handoffs since the secondary queue was formed (spin > 1 only).
    @usableFromInline var localHandoffs: UInt32
    /// The owner's xorshift32 state for keep_lock_local (never 0; only the owner, as holder, uses it).
    @usableFromInline var seed: UInt32
}

/// A pointer to a CNA node, with the address of each field for the atomics.
@usableFromInline
struct CNANodePointer: CNAQueueNode {
    @usableFromInline let raw: UnsafeMutableRawPointer

    @inline(__always) @usableFromInline
    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

    @inline(__always) @usableFromInline
    init(spin: UInt64) { raw = UnsafeMutableRawPointer(bitPattern: UInt(spin))! }

    /// The node's address as a `spin` value (never 0 or 1: nodes are 128-byte aligned).
    @inline(__always) @usableFromInline
    var asSpin: UInt64 { UInt64(UInt(bitPattern: raw)) }

    @inline(__always) @usableFromInline
    var next: UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (raw + MemoryLayout<CNANode>.offset(of: \CNANode.next)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) @usableFromInline
    var spin: UnsafeMutablePointer<UInt64> {
        (raw + MemoryLayout<CNANode>.offset(of: \CNANode.spin)!).assumingMemoryBound(to: UInt64.self)
    }
    @inline(__always) @usableFromInline
    var secondarySinceCycles: UnsafeMutablePointer<UInt64> {
        (raw + MemoryLayout<CNANode>.offset(of: \CNANode.secondarySinceCycles)!).assumingMemoryBound(to: UInt64.self)
    }
    @inline(__always) @usableFromInline
    var numaNode: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<CNANode>.offset(of: \CNANode.numaNode)!).assumingMemoryBound(to: UInt32.self)
    }
    @inline(__always) @usableFromInline
    var localHandoffs: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<CNANode>.offset(of: \CNANode.localHandoffs)!).assumingMemoryBound(to: UInt32.self)
    }
    @inline(__always) @usableFromInline
    var seed: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<CNANode>.offset(of: \CNANode.seed)!).assumingMemoryBound(to: UInt32.self)
    }
}

/// `cna` (spinning) and `cna-stp` (spin-then-park on the low half of `spin`; WaitingPolicy.swift).
public typealias CNALock = CNA<SpinWaiting>
public typealias CNASpinThenParkLock = CNA<SpinThenParkWaiting>

public struct CNA<Waiting: WaitingPolicy>: LockAlgorithm {
    public struct Context {
        @usableFromInline let node: CNANodePointer
    }

    @usableFromInline typealias Queue = CNAQueue<CNANodePointer>

    /// `spin` of a holder with nothing parked (any larger value is the secondary queue's tail).
    @usableFromInline static var noSecondary: UInt64 { 1 }

    public static var descriptor: LockDescriptor { LockDescriptor(
        name: "cna" + Waiting.nameSuffix, family: .numa, waiting: Waiting.kind,
        paper: "Dice & Kogan, EuroSys 2019 (compact NUMA-aware lock), section 3 pseudo-code: holder scans at release, keep_lock_local flushes with probability 2^-16, no time limit (kernel v15 form: qspinlock-cna)",
        supportsTryLock: true,
        options: [
            LockOptionSpec("keep-local-bits", default: 16, range: 0...31,
                           help: "a release keeps the lock local unless a pseudo-random draw's low bits are all 0: flush with probability 2^-bits (paper: keep_lock_local, THRESHOLD 0xffff = 16; 0: MCS order)"),
            LockOptionSpec("threshold", default: 0, range: 0...Int(UInt32.max),
                           help: "also splice parked remote waiters back after this many same-node handoffs past them (patch v10: 2^16; 0: no count bound)"),
            LockOptionSpec("threshold-ns", default: 0,
                           help: "also splice parked remote waiters back once the secondary queue is this old, ns (patch v15: 1 ms; 0: no time limit)"),
        ] + Waiting.options) }

    /// Tail of the main queue (a `CNANode*`), alone on its block: the whole lock.
    @usableFromInline let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    @usableFromInline let memory: LabMemory
    /// keep_lock_local's mask: the lock stays local unless `draw & keepLocalMask == 0`.
    @usableFromInline let keepLocalMask: UInt32
    /// Same-node handoffs allowed while the secondary queue is non-empty (0: no bound).
    @usableFromInline let handoffThreshold: UInt32
    /// Largest age of the secondary queue, in cycle-counter ticks (0: no limit).
    @usableFromInline let ageThresholdCycles: UInt64
    /// cna-stp: pause iterations before parking (`spin-limit`, LiTL's 2700); unused by cna.
    @usableFromInline let spinLimit: Int

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        keepLocalMask = UInt32(truncatingIfNeeded: (1 << environment.options.int("keep-local-bits")) - 1)
        handoffThreshold = UInt32(environment.options.int("threshold"))
        ageThresholdCycles = CycleClock.cycles(nanoseconds: environment.options.int("threshold-ns"))
        spinLimit = Waiting.spinLimit(environment.options)
        tail = memory.allocate(bytes: LabMemory.alignment)
            .bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        // Local memory: the node is touched first by its own thread, after pinning.
        let raw = LabMemory().allocatePadded(CNANode.self)
        raw.bindMemory(to: CNANode.self, capacity: 1)
        let node = CNANodePointer(raw)
        // Written once, before the node is ever published by the tail exchange (release).
        cshims_u32_store_relaxed(node.numaNode, UInt32(truncatingIfNeeded: thread.node))
        cshims_u32_store_relaxed(node.seed, UInt32(truncatingIfNeeded: thread.index) &+ 1)
        return Context(node: node)
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(context.node.raw, bytes: LabMemory.paddedStride(of: CNANode.self))
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        let me = context.node
        cshims_ptr_store_relaxed(me.next, nil)
        cshims_u64_store_relaxed(me.spin, 0)
        // acq_rel: release publishes our initialised node to whoever reaches it through the tail;
        // acquire pairs with the previous holder's release if we find the lock free.
        let predecessor = cshims_ptr_exchange_acq_rel(tail, me.raw)
        guard let predecessor else {
            // nil,-,- -> me,1,-. Only we read our own spin, so relaxed.
            cshims_u64_store_relaxed(me.spin, Self.noSecondary)
            return
        }
        // Link behind the predecessor; release so the holder that reaches us sees our spin == 0.
        cshims_ptr_store_release(CNANodePointer(predecessor).next, me.raw)
        // Spin on our own line; acquire pairs with the granting store, which also carries the
        // secondary queue and the fairness state written before it.
        _ = Waiting.wait(on: me.spin, while: 0, spinLimit: spinLimit)
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        let me = context.node
        cshims_ptr_store_relaxed(me.next, nil)
        cshims_u64_store_relaxed(me.spin, Self.noSecondary)
        // nil,-,- -> me,1,-. acq_rel as MCS: acquire for the critical section, release so that a
        // waiter linking behind us writes `next` after our nil.
        return cshims_ptr_cas_value_acq_rel(tail, nil, me.raw)
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        let me = context.node
        // Uncontended: nobody behind us and nothing parked (our own spin, written by whoever granted
        // us the lock before the release our acquire read, or by us).
        if cshims_ptr_load_acquire(me.next) == nil && cshims_u64_load_relaxed(me.spin) == Self.noSecondary {
            // me,1,- -> nil,-,-. Release: our critical section happens-before the next acquirer's
            // exchange.
            if cshims_ptr_cas_value_release(tail, me.raw, nil) { return }
        }
        unlockSlow(me)
    }

    /// Release when someone waits, in the main queue or the secondary one.
    @usableFromInline @inline(never)
    func unlockSlow(_ me: CNANodePointer) {
        let spin = cshims_u64_load_relaxed(me.spin)
        var next = cshims_ptr_load_acquire(me.next)
        if next == nil {
            if spin != Self.noSecondary {
                // me,E,S..E -> E,1,-: the parked waiters become the main queue, S holds. Release:
                // an arrival that links behind E must see E.next == nil (detach) first.
                let end = CNANodePointer(spin: spin)
                let head = Queue.detach(end)
                if cshims_ptr_cas_value_release(tail, me.raw, end.raw) {
                    Waiting.grant(head.spin, Self.noSecondary)
                    return
                }
                Queue.reattach(end, head: head)
            }
            // (With nothing parked, unlock's CAS failed.) A thread swapped the tail but has not
            // linked yet: wait for its link.
            repeat {
                cshims_pause()
                next = cshims_ptr_load_acquire(me.next)
            } while next == nil
        }
        passLock(from: me, spin: spin, next: CNANodePointer(next!))
    }

    /// Release with a main-queue successor: to a same-node waiter if keep_lock_local and the
    /// thresholds allow and one exists, else to the secondary queue's head, else to the successor.
    @usableFromInline
    func passLock(from me: CNANodePointer, spin: UInt64, next: CNANodePointer) {
        let parked = spin != Self.noSecondary
        var keepLocal = keepLocalDraw(me)
        if parked && keepLocal {
            // Fairness state of the parked queue, ours (relaxed: written for us before our grant).
            if handoffThreshold != 0 {
                keepLocal = cshims_u32_load_relaxed(me.localHandoffs) < handoffThreshold
            }
            if keepLocal && ageThresholdCycles != 0 {
                let since = cshims_u64_load_relaxed(me.secondarySinceCycles)
                keepLocal = cshims_cycles() &- since < ageThresholdCycles
            }
        }
        // Node ids were written before each node was published (relaxed; see findSameNode).
        if keepLocal, let found = Queue.findSameNode(
            after: next, on: cshims_u32_load_relaxed(me.numaNode),
            secondaryTail: parked ? CNANodePointer(spin: spin) : nil)
        {
            let successor = (waiter: found.successor, grant: found.secondaryTail?.asSpin ?? Self.noSecondary)
            if successor.grant != Self.noSecondary {
                // Pass the fairness state on, before the grant (its release publishes it).
                let handoffs: UInt32
                let since: UInt64
                if parked {
                    handoffs = cshims_u32_load_relaxed(me.localHandoffs) &+ 1
                    since = cshims_u64_load_relaxed(me.secondarySinceCycles)
                } else {
                    handoffs = 1
                    since = cshims_cycles()
                }
                cshims_u32_store_relaxed(successor.waiter.localHandoffs, handoffs)
                cshims_u64_store_relaxed(successor.waiter.secondarySinceCycles, since)
            }
            // Release: our critical section and the queue edits before the successor's acquire.
            Waiting.grant(successor.waiter.spin, successor.grant)
            return
        }
        if parked {
            // *,E,S..E -> *,1,-: splice S..E in front of N; S holds with nothing parked.
            let head = Queue.spliceFront(CNANodePointer(spin: spin), before: next)
            Waiting.grant(head.spin, Self.noSecondary)
        } else {
            // MCS handoff.
            Waiting.grant(next.spin, Self.noSecondary)
        }
    }

    /// keep_lock_local: false with probability 2^-bits (xorshift32 on the holder's own seed).
    @inline(__always) @usableFromInline
    func keepLocalDraw(_ me: CNANodePointer) -> Bool {
        var x = cshims_u32_load_relaxed(me.seed)
        x ^= x << 13
        x ^= x >> 17
        x ^= x << 5
        cshims_u32_store_relaxed(me.seed, x)
        return x & keepLocalMask != 0
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(tail), bytes: LabMemory.alignment)
    }
}
