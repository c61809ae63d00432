// malthusian: MCSCR, MCS with concurrency restriction (spinning variant).
//
// Paper: D. Dice, "Malthusian Locks", EuroSys 2017 (arXiv 1511.06035); LiTL's malthusian.c
// (Guiroux, Lachaize, Quéma, USENIX ATC 2016), which the author validated.
// Idea: an MCS lock whose releaser culls surplus waiters. If the successor has a successor of its
// own, the successor is moved off the queue onto a passive list, so that only the holder and about one
// waiter circulate (the active set) while the passive threads stay out of the way. A passive thread
// comes back when the queue runs empty (the most recently culled, LIFO, whose cache is warmest) or,
// for long-term fairness, by chance with probability 1/`readmit-one-in` (the eldest, FIFO).
// Transitions at unlock, written (main queue behind the holder me; passive list P), tail unchanged
// unless said: N is the successor, N2 its successor, p1 the newest passive thread, pk the eldest.
//   chance hit, P = p1..pk:       me N ...  ; p1..pk      -> me pk N ... ; p1..pk-1  pk holds
//   no successor, P = p1..pk:     me        ; p1..pk      -> me p1       ; p2..pk    p1 holds (tail me -> p1)
//   no successor, P empty:        me        ; -           -> (free)                  tail me -> nil
//   surplus:                      me N N2 ..; P           -> me N2 ..    ; N P       N2 holds
//   no surplus:                   me N      ; P           -> me N        ; P         N holds (MCS)
// Invariants:
//  - the MCS invariants on the main queue (mcs.swift); a passive node's owner spins on its own
//    `locked` exactly like a queued waiter, and is granted the lock only through the main queue;
//  - only the lock holder reads or writes the passive list (its head, tail and the nodes' links), so
//    those accesses are ordered by the lock itself;
//  - tail == nil implies the passive list is empty: a holder with no successor re-admits a passive
//    thread instead of freeing the lock, so every culled thread eventually acquires;
//  - only a waiter with a linked successor is culled, so the main queue's tail is never culled.
// Parameters: readmit-one-in (LiTL: 1024, from UNLOCK_COUNT_THRESHOLD; 0: only when the queue runs
// empty). The draw is a per-thread xorshift in the context, seeded from the thread's index.
// Waiting: a type parameter (WaitingPolicy.swift). `malthusian-stp` parks queued and passive
// waiters alike on their `locked` (1 -> 2); every grant becomes an exchange that wakes a sleeper.
// Option `spin-limit` (LiTL: 2700 pauses).
// Layout: the tail has its own 128-byte block; the passive list (and the test counters) another,
// touched only by holders; each node is padded to 128 bytes.

import CShims

/// An MCSCR node: MCS's `next` and `locked`, plus `prev` for the doubly linked passive list.
@usableFromInline
struct MalthusianNode {
    /// Main-queue successor, or the next (older) passive node while on the passive list.
    @usableFromInline var next: UnsafeMutableRawPointer?
    /// The previous (newer) passive node, on the passive list only.
    @usableFromInline var prev: UnsafeMutableRawPointer?
    /// 1 while the owner must wait.
    @usableFromInline var locked: UInt32
}

/// A pointer to a MCSCR node, with the address of each field for the atomics.
@usableFromInline
struct MalthusianNodePointer {
    @usableFromInline let raw: UnsafeMutableRawPointer

    @inline(__always) @usableFromInline
    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

    @inline(__always) @usableFromInline
    var next: UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (raw + MemoryLayout<MalthusianNode>.offset(of: \MalthusianNode.next)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) @usableFromInline
    var prev: UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (raw + MemoryLayout<MalthusianNode>.offset(of: \MalthusianNode.prev)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) @usableFromInline
    var locked: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<MalthusianNode>.offset(of: \MalthusianNode.locked)!).assumingMemoryBound(to: UInt32.self)
    }
}

/// The holder-only block: the passive list and what the tests read.
@usableFromInline
struct MalthusianPassiveList {
    /// Newest culled node (the LIFO end).
    @usableFromInline var head: UnsafeMutableRawPointer?
    /// Eldest culled node (the fairness end).
    @usableFromInline var tail: UnsafeMutableRawPointer?
    /// Waiters moved to the passive list, over the lock's life.
    @usableFromInline var culled: UInt64
    /// Passive threads re-admitted by chance (not because the queue ran empty).
    @usableFromInline var readmittedByChance: UInt64
}

/// `malthusian` (spinning) and `malthusian-stp` (spin-then-park: passive threads sleep, as the
/// paper suggests; WaitingPolicy.swift).
public typealias MalthusianLock = Malthusian<SpinWaiting>
public typealias MalthusianSpinThenParkLock = Malthusian<SpinThenParkWaiting>

public struct Malthusian<Waiting: WaitingPolicy>: LockAlgorithm {
    public struct Context {
        @usableFromInline let node: MalthusianNodePointer
        /// xorshift64 state for the re-admission draw; never 0.
        @usableFromInline var random: UInt64
    }

    public static var descriptor: LockDescriptor {
        LockDescriptor(
            name: "malthusian" + Waiting.nameSuffix, family: .restriction, waiting: Waiting.kind,
            paper: "Dice, EuroSys 2017 (MCSCR, Malthusian locks)"
                + (Waiting.kind == .spin ? "" : "; spin-then-park as LiTL (Guiroux et al., ATC 2016)"),
            supportsTryLock: true,
            options: [
                LockOptionSpec("readmit-one-in", default: 1024, range: 0...Int(UInt32.max),
                               help: "re-admit the eldest passive thread at 1 unlock in N on average (LiTL: 1024; 0: only when the queue runs empty); a culled waiter waits about N unlocks, so its worst acquisition is long by design, not a lost wake-up (327-542 ms at 8 threads on 2 CPUs here)"),
            ] + Waiting.options)
    }

    /// Tail of the main queue (a `MalthusianNode*`), alone on its block.
    @usableFromInline let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// The passive list, on the next block; only the holder touches it.
    @usableFromInline let passive: UnsafeMutablePointer<MalthusianPassiveList>
    @usableFromInline let memory: LabMemory
    /// A draw (the high 32 bits of the xorshift state) below this re-admits: 2^32 / readmit-one-in.
    @usableFromInline let readmitBelow: UInt64
    /// malthusian-stp: pause iterations before parking (`spin-limit`); unused by malthusian.
    @usableFromInline let spinLimit: Int

    @usableFromInline static var blockBytes: Int { 2 * LabMemory.alignment }

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        let oneIn = UInt64(environment.options.int("readmit-one-in"))
        readmitBelow = oneIn == 0 ? 0 : (UInt64(1) << 32) / oneIn
        spinLimit = Waiting.spinLimit(environment.options)
        let block = memory.allocate(bytes: Self.blockBytes)
        tail = block.bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
        passive = (block + LabMemory.alignment).bindMemory(to: MalthusianPassiveList.self, capacity: 1)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        // Local memory: the node is touched first by its own thread, after pinning.
        let raw = LabMemory().allocatePadded(MalthusianNode.self)
        raw.bindMemory(to: MalthusianNode.self, capacity: 1)
        // SplitMix64 of the thread index: well-mixed, never-zero seeds for nearby indices.
        var z = UInt64(truncatingIfNeeded: thread.index) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Context(node: MalthusianNodePointer(raw), random: z == 0 ? 1 : z)
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(context.node.raw, bytes: LabMemory.paddedStride(of: MalthusianNode.self))
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        let me = context.node
        cshims_ptr_store_relaxed(me.next, nil)
        cshims_u32_store_relaxed(me.locked, 1)
        // acq_rel as MCS: release publishes our node, acquire pairs with the previous holder's
        // release if we find the lock free.
        guard let predecessor = cshims_ptr_exchange_acq_rel(tail, me.raw) else { return }
        // Release: the holder that reaches us sees locked == 1.
        cshims_ptr_store_release(MalthusianNodePointer(predecessor).next, me.raw)
        // Acquire: pairs with the grant, whether we were queued or passive in between.
        _ = Waiting.wait(on: me.locked, while: 1, spinLimit: spinLimit)
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        let me = context.node
        cshims_ptr_store_relaxed(me.next, nil)
        // Only on an empty queue (hence an empty passive list). acq_rel as MCS.
        return cshims_ptr_cas_value_acq_rel(tail, nil, me.raw)
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        let me = context.node
        // Long-term fairness: now and then the eldest passive thread goes next.
        let readmitEldest = readmitBelow != 0 && Self.draw(&context.random) < readmitBelow
        // Uncontended: no chance re-admission, nobody behind us, nobody passive.
        if !readmitEldest && cshims_ptr_load_acquire(me.next) == nil
            && cshims_ptr_load_relaxed(passiveHeadField) == nil {
            // Release: our critical section happens-before the next acquirer's exchange.
            if cshims_ptr_cas_value_release(tail, me.raw, nil) { return }
        }
        unlockSlow(me, readmitEldest: readmitEldest)
    }

    /// Release when someone waits, queued or passive.
    @usableFromInline @inline(never)
    func unlockSlow(_ me: MalthusianNodePointer, readmitEldest: Bool) {
        if readmitEldest, let eldest = cshims_ptr_load_relaxed(passiveTailField) {
            let node = MalthusianNodePointer(eldest)
            removeFromPassive(node)
            passive.pointee.readmittedByChance &+= 1
            admit(node, after: me)
            return
        }
        var next = cshims_ptr_load_acquire(me.next)
        if next == nil {
            // The queue looks empty: re-admit the newest passive thread rather than free the lock.
            if let newest = cshims_ptr_load_relaxed(passiveHeadField) {
                let node = MalthusianNodePointer(newest)
                removeFromPassive(node)
                admit(node, after: me)
                return
            }
            // Free the lock (unlock has not tried if the draw said re-admit and nobody was passive).
            // Release: our critical section happens-before the next acquirer's exchange.
            if cshims_ptr_cas_value_release(tail, me.raw, nil) { return }
            // A thread swapped the tail but has not linked yet: wait for its link.
            repeat {
                cshims_pause()
                next = cshims_ptr_load_acquire(me.next)
            } while next == nil
        } else if let afterNext = cshims_ptr_load_acquire(MalthusianNodePointer(next!).next) {
            // Surplus: the successor has a successor. Cull the successor; it has a linked
            // successor, so it is not the tail and nobody else writes its `next`.
            cull(MalthusianNodePointer(next!))
            next = afterNext
        }
        // Release: our critical section (and the passive list) before the successor's acquire.
        Waiting.grant(MalthusianNodePointer(next!).locked, 0)
    }

    /// Grants the lock to `node` (off the passive list), inserting it right behind the holder.
    @usableFromInline
    func admit(_ node: MalthusianNodePointer, after me: MalthusianNodePointer) {
        var next = cshims_ptr_load_acquire(me.next)
        if next == nil {
            cshims_ptr_store_relaxed(node.next, nil)
            // me -> node as the tail. Release: an arrival that links behind node sees its nil first.
            if cshims_ptr_cas_value_release(tail, me.raw, node.raw) {
                Waiting.grant(node.locked, 0)
                return
            }
            repeat {
                cshims_pause()
                next = cshims_ptr_load_acquire(me.next)
            } while next == nil
        }
        cshims_ptr_store_relaxed(node.next, next)
        // Release: node's link and our critical section before its owner's acquire.
        Waiting.grant(node.locked, 0)
    }

    /// Pushes a culled waiter on the newest end of the passive list. Holder only.
    @usableFromInline
    func cull(_ node: MalthusianNodePointer) {
        let newest = cshims_ptr_load_relaxed(passiveHeadField)
        cshims_ptr_store_relaxed(node.next, newest)
        cshims_ptr_store_relaxed(node.prev, nil)
        if let newest {
            cshims_ptr_store_relaxed(MalthusianNodePointer(newest).prev, node.raw)
        } else {
            cshims_ptr_store_relaxed(passiveTailField, node.raw)
        }
        cshims_ptr_store_relaxed(passiveHeadField, node.raw)
        passive.pointee.culled &+= 1
    }

    /// Unlinks a node from the passive list. Holder only.
    @usableFromInline
    func removeFromPassive(_ node: MalthusianNodePointer) {
        let newer = cshims_ptr_load_relaxed(node.prev)
        let older = cshims_ptr_load_relaxed(node.next)
        if let newer {
            cshims_ptr_store_relaxed(MalthusianNodePointer(newer).next, older)
        } else {
            cshims_ptr_store_relaxed(passiveHeadField, older)
        }
        if let older {
            cshims_ptr_store_relaxed(MalthusianNodePointer(older).prev, newer)
        } else {
            cshims_ptr_store_relaxed(passiveTailField, newer)
        }
    }

    @inline(__always) @usableFromInline
    var passiveHeadField: UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (UnsafeMutableRawPointer(passive) + MemoryLayout<MalthusianPassiveList>.offset(of: \MalthusianPassiveList.head)!)
            .assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) @usableFromInline
    var passiveTailField: UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (UnsafeMutableRawPointer(passive) + MemoryLayout<MalthusianPassiveList>.offset(of: \MalthusianPassiveList.tail)!)
            .assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }

    /// xorshift64 (Marsaglia 13, 7, 17); returns the high 32 bits of the new state.
    @inline(__always) @usableFromInline
    static func draw(_ state: inout UInt64) -> UInt64 {
        var x = state
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        state = x
        return x >> 32
    }

    /// Waiters culled to the passive list so far (read when no thread uses the lock).
    var culledCount: UInt64 { passive.pointee.culled }
    /// Passive threads re-admitted by the random draw so far (same caveat).
    var readmittedByChanceCount: UInt64 { passive.pointee.readmittedByChance }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(tail), bytes: Self.blockBytes)
    }
}
