// shfl, shfl-b: ShflLock, the spinning NUMA-aware variant and the blocking one.
//
// Paper: S. Kashyap, I. Calciu, X. Cheng, C. Min, T. Kim, "Scalable and Practical Locking with
// Shuffling", SOSP 2019; the authors' code, github.com/sslab-gatech/shfllock (ulocks/src/aqswonode.c,
// the kernel's aqs spinlock).
// Idea: a test-and-set word decides who holds the lock; an MCS-style queue only decides who may try
// next. While they wait, waiters reorder the queue: the one holding the shuffler role walks the queue
// behind it and moves waiters of its own node up behind itself, so that the lock passes within a node,
// and the reordering costs the holder nothing.
// The word is 32 bits, byte 0 `locked`, byte 1 `noSteal`; the tail pointer shares its block (the
// authors keep both in one line). Transitions, written (locked, noSteal) as in
// kernel/locking/qspinlock.c:
//   lock, fast path and tryLock:        0,0 -> 1,0   CAS on the whole word: only when nobody queues
//   first waiter (found tail == nil):   *,0 -> *,1   newcomers must queue from now on
//   queue head takes the lock:          0,* -> 1,*   CAS, keeps noSteal
//   unlock:                             1,* -> 0,*   release store to the locked byte alone
//   head leaves an empty queue:         1,1 -> 1,0   then CAS tail me -> nil; if that fails (a
//                                       waiter arrived) 1,0 -> 1,1 again. Clearing before the CAS,
//                                       rather than after as the authors do, means a waiter that
//                                       finds the queue empty always sets noSteal after we clear it.
// Queue nodes: `status` 0 while a waiter waits behind another, 1 once it is the head (the one that
// spins on the word); `isShuffler` the role; `batch` the waiter's place in the run of same-node
// waiters grouped behind a shuffler (0: never grouped); `lastVisited` where the next walk resumes.
// Invariants:
//  - the lock is held iff locked == 1; at most one queued waiter, the head, competes for it, and only
//    with newcomers on the fast path while noSteal == 0;
//  - noSteal == 1 whenever the queue is non-empty and no head is leaving it;
//  - at most one waiter shuffles at a time, and it only edits `next` links of nodes behind itself
//    (never the tail's, never one a thread ahead of it may read). The role passes by appointment
//    (release/acquire on `isShuffler`), or is taken by a head with batch 0; the two cannot overlap,
//    because every waiter ahead of an appointed shuffler belongs to a batch (batch != 0);
//  - a shuffler moves a waiter only if it has a successor (so never the tail) and puts it directly
//    behind the batch; the batch stays contiguous and in arrival order;
//  - a batch has at most `max-shuffles` waiters (the shuffler counts as 1); a shuffler whose batch is
//    full passes the role to the waiter behind it, which starts a batch of its own node or passes on.
//    So one batch moves at most max-shuffles - 1 waiters past the waiters it overtakes (the authors'
//    bound, 256). max-shuffles=1 turns shuffling off (FIFO, apart from fast-path stealing).
// Limit (the authors' rule, kept): the tail is never moved, so with one same-node waiter behind the
// head (4 threads on 2 nodes, a returning holder always queues last) the lock hands over like MCS;
// grouping needs a same-node waiter with someone behind it. CNA, deciding at release, has no such limit.
// Layout: the word and the tail share one 128-byte block; each node is padded to 128 bytes.
// shfl-b (the paper's blocking ShflLock, section 4.2; the type parameter SpinThenParkWaiting):
// waiters behind the head spin `SpinThenParkWaiting.spinLimit` iterations, then park on their
// `status` (0 -> 2, FUTEX_WAIT); the head never parks (it spins on the word, as in the paper).
// The wake-up leaves the critical path in two ways: (1) a waiter that becomes the head wakes its
// own successor at once (`wakeEarly`), while the holder is still in its critical section, so the
// next head is running by the time it is granted; (2) the shuffler wakes every waiter it groups
// into its batch and the waiter it appoints shuffler, i.e. the next owners, during its walk. The
// grant of `status` = 1 is an exchange that wakes the new head only if it still sleeps (the
// fallback, on the holder's path). A parked waiter appointed shuffler must not sleep through the
// role: the waiter's CAS 0 -> 2 and the appointer's store of `isShuffler` are each followed by a
// seq_cst fence and a read of the other's word, so one of them sees the other (store buffering).
// Mixed-size access: the word is CASed as 32 bits and the unlock stores its low byte, as qspinlock
// does on x86-64 and arm64 (both little-endian; checked at compile time below).

import CShims

#if !_endian(little)
#error("shfl stores the locked byte as byte 0 of the lock word: little-endian only")
#endif

/// A ShflLock queue node.
@usableFromInline
struct ShflNode {
    @usableFromInline var next: UnsafeMutableRawPointer?
    /// Where the shuffler's next walk resumes (nil: at the shuffler itself).
    @usableFromInline var lastVisited: UnsafeMutableRawPointer?
    /// 0 while waiting behind another waiter, 1 once at the head of the queue.
    @usableFromInline var status: UInt32
    /// 1 while this waiter holds the shuffler role.
    @usableFromInline var isShuffler: UInt32
    /// Place in the batch of same-node waiters this waiter belongs to (0: none).
    @usableFromInline var batch: UInt32
    /// The owner's NUMA node (ThreadSlot.node), written once when the context is made.
    @usableFromInline var numaNode: UInt32
}

/// A pointer to a ShflLock node, with the address of each field for the atomics.
@usableFromInline
struct ShflNodePointer: Equatable {
    @usableFromInline let raw: UnsafeMutableRawPointer

    @inline(__always) @usableFromInline
    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

    @inline(__always) @usableFromInline
    var next: UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (raw + MemoryLayout<ShflNode>.offset(of: \ShflNode.next)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) @usableFromInline
    var lastVisited: UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (raw + MemoryLayout<ShflNode>.offset(of: \ShflNode.lastVisited)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) @usableFromInline
    var status: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<ShflNode>.offset(of: \ShflNode.status)!).assumingMemoryBound(to: UInt32.self)
    }
    @inline(__always) @usableFromInline
    var isShuffler: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<ShflNode>.offset(of: \ShflNode.isShuffler)!).assumingMemoryBound(to: UInt32.self)
    }
    @inline(__always) @usableFromInline
    var batch: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<ShflNode>.offset(of: \ShflNode.batch)!).assumingMemoryBound(to: UInt32.self)
    }
    @inline(__always) @usableFromInline
    var numaNode: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<ShflNode>.offset(of: \ShflNode.numaNode)!).assumingMemoryBound(to: UInt32.self)
    }
}

/// `shfl` (spinning) and `shfl-b` (blocking: waiters park, the shuffler wakes the next owners).
public typealias ShflLock = Shfl<SpinWaiting>
public typealias ShflBlockingLock = Shfl<SpinThenParkWaiting>

public struct Shfl<Waiting: WaitingPolicy>: LockAlgorithm {
    public struct Context {
        @usableFromInline let node: ShflNodePointer
    }

    /// Bit of `locked` (byte 0) and of `noSteal` (byte 1) in the word.
    @usableFromInline static var lockedBit: UInt32 { 1 }
    @usableFromInline static var noStealBit: UInt32 { 1 << 8 }

    /// Whether waiters park (shfl-b); a constant once specialised.
    @usableFromInline static var blocking: Bool { Waiting.kind != .spin }
    /// `status` of a parked waiter.
    @usableFromInline static var parked: UInt32 { SpinThenParkWaiting.parkedMark }

    public static var descriptor: LockDescriptor { LockDescriptor(
        name: blocking ? "shfl-b" : "shfl", family: .numa, waiting: Waiting.kind,
        paper: blocking ? "Kashyap, Calciu, Cheng, Min & Kim, SOSP 2019 (ShflLock, blocking)"
            : "Kashyap, Calciu, Cheng, Min & Kim, SOSP 2019 (ShflLock, spinning)",
        supportsTryLock: true,
        options: [
            LockOptionSpec("max-shuffles", default: 256, range: 1...65535,
                           help: "most waiters in a batch of same-node waiters grouped by the shufflers (authors: 256; 1: no shuffling)"),
        ]) }

    /// The TAS word (offset 0): byte 0 locked, byte 1 noSteal.
    @usableFromInline let word: UnsafeMutablePointer<UInt32>
    /// The locked byte alone, for the release store.
    @usableFromInline let lockedByte: UnsafeMutablePointer<UInt8>
    /// Tail of the waiter queue (a `ShflNode*`), offset 8 of the same block.
    @usableFromInline let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    @usableFromInline let memory: LabMemory
    @usableFromInline let maxShuffles: UInt32

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        maxShuffles = UInt32(environment.options.int("max-shuffles"))
        let block = memory.allocate(bytes: LabMemory.alignment)
        word = block.bindMemory(to: UInt32.self, capacity: 1)
        lockedByte = UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt8.self)
        tail = (block + 8).bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        // Local memory: the node is touched first by its own thread, after pinning.
        let raw = LabMemory().allocatePadded(ShflNode.self)
        raw.bindMemory(to: ShflNode.self, capacity: 1)
        let node = ShflNodePointer(raw)
        // Written once, before the node is ever published by the tail exchange (release).
        cshims_u32_store_relaxed(node.numaNode, UInt32(truncatingIfNeeded: thread.node))
        return Context(node: node)
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(context.node.raw, bytes: LabMemory.paddedStride(of: ShflNode.self))
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        var expected: UInt32 = 0
        // 0,0 -> 1,0. Acquire: pairs with the release store of the previous unlock.
        if cshims_u32_cas_acquire(word, &expected, Self.lockedBit) { return }
        lockSlow(context.node)
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        var expected: UInt32 = 0
        // 0,0 -> 1,0: free and nobody queued (queued waiters have closed the fast path).
        return cshims_u32_cas_acquire(word, &expected, Self.lockedBit)
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        // 1,* -> 0,*. Release: the critical section happens-before the next CAS that reads 0.
        cshims_u8_store_release(lockedByte, 0)
    }

    /// Queue, wait to be the head (shuffling if appointed), take the word, leave the queue.
    @usableFromInline
    func lockSlow(_ me: ShflNodePointer) {
        cshims_ptr_store_relaxed(me.next, nil)
        cshims_ptr_store_relaxed(me.lastVisited, nil)
        cshims_u32_store_relaxed(me.status, 0)
        cshims_u32_store_relaxed(me.isShuffler, 0)
        cshims_u32_store_relaxed(me.batch, 0)
        // acq_rel: release publishes our initialised node; acquire orders our link store after the
        // predecessor's initialisation of its `next`.
        if let predecessor = cshims_ptr_exchange_acq_rel(tail, me.raw) {
            // Release: whoever walks to us sees our node initialised.
            cshims_ptr_store_release(ShflNodePointer(predecessor).next, me.raw)
            // Acquire on both: `status` pairs with the previous head's release; `isShuffler` with
            // the appointing shuffler's release, which publishes its queue edits.
            var spins = 0
            while cshims_u32_load_acquire(me.status) == 0 {
                if cshims_u32_load_acquire(me.isShuffler) != 0 {
                    shuffleWaiters(me, isHead: false)
                    spins = 0
                }
                if Self.blocking {
                    spins &+= 1
                    if spins >= SpinThenParkWaiting.spinLimit {
                        parkWaiter(me)
                        spins = 0
                    }
                }
                cshims_pause()
            }
            if Self.blocking, let next = cshims_ptr_load_acquire(me.next) {
                // We are the head: wake the next head now, while the holder is in its critical section.
                wakeEarly(ShflNodePointer(next))
            }
        } else {
            // *,0 -> *,1. Orders no data (the shim has no relaxed fetch-or; acquire is free on x86).
            _ = cshims_u32_fetch_or_acquire(word, Self.noStealBit)
        }
        // Head of the queue: wait for the word, shuffling meanwhile if we are the shuffler or no one
        // has grouped us (batch 0: nobody ahead of us shuffles).
        while true {
            var current = cshims_u32_load_relaxed(word)
            if current & Self.lockedBit == 0 {
                // 0,* -> 1,*. Acquire: pairs with the unlock's release store.
                if cshims_u32_cas_acquire(word, &current, current | Self.lockedBit) { break }
                continue
            }
            if cshims_u32_load_relaxed(me.batch) == 0 || cshims_u32_load_acquire(me.isShuffler) != 0 {
                shuffleWaiters(me, isHead: true)
            }
            cshims_pause()
        }
        // We hold the lock; hand the head position to the next waiter. Nobody else edits our `next`
        // now: shufflers work behind themselves, and they are all behind us.
        var next = cshims_ptr_load_acquire(me.next)
        if next == nil {
            // 1,1 -> 1,0 before the queue can empty (release order not needed; no relaxed variant).
            _ = cshims_u32_fetch_and_release(word, ~Self.noStealBit)
            // Release: our clearing of noSteal (just above) happens-before the next first waiter's
            // setting of it, which follows its acquire exchange that reads this nil; relaxed, a new
            // first waiter's fetch_or could come first in the word's order and stealing would stay
            // enabled with a waiter queued (fairness only; ARMv8 allows it). Free on x86.
            if cshims_ptr_cas_value_release(tail, me.raw, nil) { return }
            // A waiter arrived: 1,0 -> 1,1 again, then wait for its link.
            _ = cshims_u32_fetch_or_acquire(word, Self.noStealBit)
            repeat {
                cshims_pause()
                next = cshims_ptr_load_acquire(me.next)
            } while next == nil
        }
        // Release: our queue edits (as shuffler) before the new head reads its links.
        // (shfl-b: an exchange that wakes the new head if it still sleeps.)
        Waiting.grant(ShflNodePointer(next!).status, 1)
    }

    /// The shuffler's walk: from where the last walk stopped, move waiters of our node up behind
    /// the batch, then appoint the batch's last waiter as the next shuffler.
    @usableFromInline
    func shuffleWaiters(_ me: ShflNodePointer, isHead: Bool) {
        // Our node id, our batch (relaxed: written by the shuffler that grouped us, published by
        // the release that appointed us or made us head, or by ourselves).
        let myNode = cshims_u32_load_relaxed(me.numaNode)
        var batch = cshims_u32_load_relaxed(me.batch)
        if batch == 0 {
            batch = 1
            cshims_u32_store_relaxed(me.batch, batch)
        }
        // The role is decided anew at the end of the walk.
        cshims_u32_store_relaxed(me.isShuffler, 0)
        if batch >= maxShuffles {
            // Our batch is full: the waiter behind us starts the next one (or passes the role on).
            if let next = cshims_ptr_load_acquire(me.next) {
                appointShuffler(ShflNodePointer(next), resumeAt: nil)
            }
            return
        }
        var last = me
        var prev = cshims_ptr_load_relaxed(me.lastVisited).map(ShflNodePointer.init) ?? me
        var moved = false
        while true {
            // Acquire: pairs with each waiter's release link, so its node is initialised.
            guard let currentRaw = cshims_ptr_load_acquire(prev.next) else { break }
            let current = ShflNodePointer(currentRaw)
            if cshims_u32_load_relaxed(current.numaNode) == myNode {
                if prev == last {
                    // Already right behind the batch: it just grows.
                    prev = current
                } else {
                    // Move current from behind prev to behind last. It must have a successor: a
                    // waiter without one may be the tail, whose `next` an arrival is about to write.
                    guard let after = cshims_ptr_load_acquire(current.next) else { break }
                    cshims_ptr_store_relaxed(prev.next, after)
                    cshims_ptr_store_relaxed(current.next, cshims_ptr_load_relaxed(last.next))
                    cshims_ptr_store_relaxed(last.next, currentRaw)
                }
                batch += 1
                if Self.blocking { wakeEarly(current) }
                cshims_u32_store_relaxed(current.batch, batch)
                last = current
                moved = true
                if batch >= maxShuffles { break }
            } else {
                prev = current
            }
            if isHead {
                // Stop once something moved and the lock is free, so as not to delay taking it.
                if moved && cshims_u32_load_relaxed(word) & Self.lockedBit == 0 { break }
            } else if cshims_u32_load_acquire(me.status) != 0 {
                // We became the head: go and take the lock.
                break
            }
        }
        appointShuffler(last, resumeAt: prev == last ? nil : prev)
    }

    @inline(__always) @usableFromInline
    func appointShuffler(_ node: ShflNodePointer, resumeAt: ShflNodePointer?) {
        cshims_ptr_store_relaxed(node.lastVisited, resumeAt?.raw)
        // Release: our queue edits and `lastVisited` before the new shuffler's acquire of the role.
        cshims_u32_store_release(node.isShuffler, 1)
        if Self.blocking {
            // Against parkWaiter's CAS and fence: one of us sees the other's write.
            cshims_fence_seq_cst()
            wakeEarly(node)
        }
    }

    /// shfl-b: a waiter behind the head parks (0 -> 2) until granted, woken early or appointed.
    @usableFromInline @inline(never)
    func parkWaiter(_ me: ShflNodePointer) {
        // 0 -> 2. Fails if we were granted (1) meanwhile.
        guard cshims_u32_cas_value_relaxed(me.status, 0, Self.parked) else { return }
        cshims_fence_seq_cst()
        if cshims_u32_load_acquire(me.isShuffler) != 0 {
            // Appointed shuffler meanwhile: do not sleep. 2 -> 0 unless granted or woken already.
            _ = cshims_u32_cas_value_relaxed(me.status, Self.parked, 0)
            return
        }
        // Sleep while the word reads 2: a grant (-> 1) or an early wake-up (-> 0) ends it; EAGAIN,
        // EINTR and spurious wake-ups recheck.
        while cshims_u32_load_acquire(me.status) == Self.parked {
            _ = cshims_futex_wait(me.status, Self.parked)
        }
    }

    /// shfl-b: wakes `node`'s owner if it sleeps (2 -> 0; it resumes spinning). Never overwrites a
    /// grant: only a CAS from 2. The owner may have left by the FUTEX_WAKE: see WaitingPolicy.swift.
    @inline(__always) @usableFromInline
    func wakeEarly(_ node: ShflNodePointer) {
        if cshims_u32_load_relaxed(node.status) == Self.parked
            && cshims_u32_cas_value_relaxed(node.status, Self.parked, 0) {
            _ = cshims_futex_wake(node.status, 1)
        }
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(word), bytes: LabMemory.alignment)
    }
}
