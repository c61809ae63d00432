// shfl, shfl-b: ShflLock, the spinning NUMA-aware variant and the blocking one.
//
// Paper: S. Kashyap, I. Calciu, X. Cheng, C. Min, T. Kim, "Scalable and Practical Locking with
// Shuffling", SOSP 2019. Reference code: github.com/sslab-gatech/shfllock, commit 0f3273ec (Nov 2021):
// ulocks/src/aqswonode.c (spinning, `shfl`), ulocks/src/aqmwonode.c (blocking, user space, `shfl-b`)
// and klocks/shfllocks.patch (the kernel's blocking rwsem, kernel/locking/rwsem.c).
// Idea: a test-and-set word decides who holds the lock; an MCS-style queue only decides who may try
// next. While they wait, waiters reorder the queue: the one holding the shuffler role walks the queue
// behind it and moves waiters of its own node up behind itself, so that the lock passes within a node,
// and the reordering costs the holder nothing.
// The word is 32 bits, byte 0 `locked`, byte 1 `noSteal`; the tail pointer shares its block (the
// authors keep both in one line). Transitions, written (locked, noSteal) as in
// kernel/locking/qspinlock.c:
//   lock, fast path:                    0,0 -> 1,0   CAS on the whole word (theirs: 16 bits)
//   tryLock:                            0,* -> 1,*   CAS on the locked byte alone: steals even while
//                                                    waiters queue (aqs_mutex_trylock)
//   first waiter (found tail == nil):   *,0 -> *,1   no-steal=1 only: newcomers must queue
//   queue head takes the lock:          0,* -> 1,*   CAS on the locked byte, keeps noSteal
//   unlock:                             1,* -> 0,*   release store to the locked byte alone
//   head leaves an empty queue:         1,1 -> 1,0   no-steal=1 only; then CAS tail me -> nil; if that
//                                       fails (a waiter arrived) 1,0 -> 1,1 again. Clearing before the
//                                       CAS, rather than after as the authors do, means a waiter that
//                                       finds the queue empty always sets noSteal after we clear it.
// Defaults, each the authors' (commit above):
//  - pass-one-in=1024: at the start of every walk the shuffler draws from a per-thread xorshift32
//    (<<6, >>21, <<7, seeded thread index + 1) and, when the draw masked with 1023 is 0, passes the
//    role to its successor without walking (keep_lock_local(), UNLOCK_COUNT_THRESHOLD 1024, in
//    aqswonode.c and aqmwonode.c). One draw per walk, and a shuffler with nothing to do walks again
//    at once (it re-appoints itself), so the role moves on within ~1024 walks, not handovers;
//  - max-shuffles=0: no count bound (the default build; `USE_COUNTER` is commented out). Their
//    counter build, AQS_MAX_LOCK_COUNT 256 in aqswonode.h, is `max-shuffles=256:pass-one-in=0`;
//  - no-steal=1 for shfl (aqswonode.c: the first waiter sets no_stealing, the fast path CASes
//    locked and no_stealing together); no-steal=0 for shfl-b: the blocking variants never close
//    the fast path, so running threads pass the lock among themselves while queued waiters sleep
//    (rwsem.c: disable_stealing() commented out; aqmwonode.c: the head clears no_stealing before
//    each try. Its enable/disable names are swapped, so it sets no_stealing when the queue empties,
//    which only sends the next arrival once through the slow path: not reproduced);
//  - shfl-b waiters spin 2700 iterations before parking (SPINNING_THRESHOLD, waiting_policy.h, as
//    LiTL): option `spin-limit`.
// Queue nodes: `status` 0 while a waiter waits behind another, 1 once it is the head (the one that
// spins on the word), 2 while parked (shfl-b); `isShuffler` the role; `batch` the waiter's place in
// the run of same-node waiters grouped behind a shuffler (0: never grouped; without a count bound
// every grouped waiter gets its shuffler's batch, as the authors' wcount); `lastVisited` where the
// next walk resumes; `random` the owner's xorshift32 state.
// Invariants:
//  - the lock is held iff locked == 1; queued waiters compete for it only through the head;
//  - no-steal=1: noSteal == 1 whenever the queue is non-empty and no head is leaving it, so only the
//    head and tryLock take a free lock; no-steal=0: noSteal is always 0 and the fast path steals;
//  - at most one waiter shuffles at a time, and it only edits `next` links of nodes behind itself
//    (never the tail's, never one a thread ahead of it may read). The role passes by appointment
//    (release/acquire on `isShuffler`), or is taken by a head with batch 0; the two cannot overlap,
//    because every waiter ahead of an appointed shuffler belongs to a batch (batch != 0);
//  - a walk never visits the tail (the authors stop at `curr == lock->tail`) and moves a waiter only
//    if it has a successor; it puts it directly behind the batch, which stays contiguous and in
//    arrival order;
//  - with max-shuffles=N > 0 a batch has at most N waiters (the shuffler counts as 1); a shuffler
//    whose batch is full passes the role to the waiter behind it. max-shuffles=1: FIFO, apart from
//    stealing.
// Limit (the authors' rule, kept): the tail is never moved, so with one same-node waiter behind the
// head (4 threads on 2 nodes, a returning holder always queues last) the lock hands over like MCS;
// grouping needs a same-node waiter with someone behind it. CNA, deciding at release, has no such limit.
// Layout: the word and the tail share one 128-byte block; each node is padded to 128 bytes.
// shfl-b (the paper's blocking ShflLock, section 4.2; the type parameter SpinThenParkWaiting):
// waiters behind the head spin `spin-limit` iterations, shuffling meanwhile if
// they hold the role, then drop the role and park on their `status` (0 -> 2, FUTEX_WAIT); the head
// never parks (it spins on the word, as in aqmwonode.c). The wake-up leaves the critical path in two
// ways: (1) a waiter that becomes the head wakes its own successor at once (`wakeEarly`), while the
// holder is still in its critical section, so the next head is running by the time it is granted;
// (2) the shuffler wakes every waiter it groups into its batch (aqmwonode.c's force_update_node),
// the next owners. The grant of `status` = 1 is an exchange that wakes the new head only if it still
// sleeps (the fallback). An appointed shuffler that sleeps is not woken (aqmwonode.c sets `sleader`
// alone): it shuffles once woken. Departures from aqmwonode.c, for oversubscription: a waiter
// woken early (2 -> 0) spins one more budget and may park again (theirs, UNPWAIT, never parks
// again), and a shuffler parks once its budget is spent (theirs, once it has shuffled, never parks):
// a waiter that never sleeps takes the CPU from the holder when threads outnumber CPUs.
// Mixed-size access: the word is CASed as 32 bits and the unlock and tryLock use its low byte, as
// qspinlock does on x86-64 and arm64 (both little-endian; checked at compile time below).

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
    /// 0 while waiting behind another waiter, 1 once at the head of the queue, 2 parked (shfl-b).
    @usableFromInline var status: UInt32
    /// 1 while this waiter holds the shuffler role.
    @usableFromInline var isShuffler: UInt32
    /// Place in the batch of same-node waiters this waiter belongs to (0: none).
    @usableFromInline var batch: UInt32
    /// The owner's NUMA node (ThreadSlot.node), written once when the context is made.
    @usableFromInline var numaNode: UInt32
    /// The owner's xorshift32 state for the role-passing draw; never 0. Only the owner touches it.
    @usableFromInline var random: UInt32
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
    @inline(__always) @usableFromInline
    var random: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<ShflNode>.offset(of: \ShflNode.random)!).assumingMemoryBound(to: UInt32.self)
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
        paper: blocking ? "Kashyap, Calciu, Cheng, Min & Kim, SOSP 2019 (ShflLock, blocking; defaults of sslab-gatech/shfllock aqmwonode.c)"
            : "Kashyap, Calciu, Cheng, Min & Kim, SOSP 2019 (ShflLock, spinning; defaults of sslab-gatech/shfllock aqswonode.c)",
        supportsTryLock: true,
        options: [
            LockOptionSpec("pass-one-in", default: 1024, range: 0...65536,
                           help: "the shuffler passes its role on without walking at 1 walk in N (authors: 1024; 0: never)"),
            LockOptionSpec("max-shuffles", default: 0, range: 0...65535,
                           help: "most waiters in a batch grouped by the shufflers (0: no bound, the authors' default; their USE_COUNTER build: 256 with pass-one-in=0; 1: no shuffling)"),
            LockOptionSpec("no-steal", default: blocking ? 0 : 1, range: 0...1,
                           help: "1: the first waiter closes the fast path until the queue empties (authors' spinning lock); 0: newcomers always steal (authors' blocking locks)"),
        ] + Waiting.options) }

    /// The TAS word (offset 0): byte 0 locked, byte 1 noSteal.
    @usableFromInline let word: UnsafeMutablePointer<UInt32>
    /// The locked byte alone, for the release store, the head's CAS and tryLock.
    @usableFromInline let lockedByte: UnsafeMutablePointer<UInt8>
    /// Tail of the waiter queue (a `ShflNode*`), offset 8 of the same block.
    @usableFromInline let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    @usableFromInline let memory: LabMemory
    /// Count bound of a batch; 0: none.
    @usableFromInline let maxShuffles: UInt32
    /// The role passes on without a walk when the draw modulo this is 0; 0: never.
    @usableFromInline let passOneIn: UInt32
    /// The first waiter sets noSteal (shfl) or nobody does (shfl-b).
    @usableFromInline let closesFastPath: Bool
    /// shfl-b: pause iterations (shuffling included) before a waiter behind the head parks.
    @usableFromInline let spinLimit: Int

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        maxShuffles = UInt32(environment.options.int("max-shuffles"))
        passOneIn = UInt32(environment.options.int("pass-one-in"))
        closesFastPath = environment.options.int("no-steal") != 0
        spinLimit = Waiting.spinLimit(environment.options)
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
        // The authors seed with cur_thread_id + 1.
        let seed = UInt32(truncatingIfNeeded: thread.index &+ 1)
        cshims_u32_store_relaxed(node.random, seed == 0 ? 1 : seed)
        return Context(node: node)
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(context.node.raw, bytes: LabMemory.paddedStride(of: ShflNode.self))
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        // 0,0 -> 1,0. Acquire: pairs with the release store of the previous unlock.
        if cshims_u32_cas_value_acquire(word, 0, Self.lockedBit) { return }
        lockSlow(context.node)
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        // 0,* -> 1,*: the locked byte alone, so tryLock steals even past queued waiters, as the
        // authors' aqs_mutex_trylock. Acquire: pairs with the unlock's release store.
        cshims_u8_cas_value_acquire(lockedByte, 0, 1)
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
                }
                if Self.blocking {
                    // Walks count against the budget: a shuffler that re-appoints itself must
                    // still sleep in the end.
                    spins &+= 1
                    if spins >= spinLimit {
                        // Drop the role: asleep, we would hold it for nothing. Nobody else writes
                        // our `isShuffler` while we hold the role (at most one shuffler).
                        if cshims_u32_load_relaxed(me.isShuffler) != 0 {
                            cshims_u32_store_relaxed(me.isShuffler, 0)
                        }
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
        } else if closesFastPath {
            // *,0 -> *,1. Orders no data (the shim has no relaxed fetch-or; acquire is free on x86).
            _ = cshims_u32_fetch_or_acquire(word, Self.noStealBit)
        }
        // Head of the queue: wait for the word, shuffling meanwhile if we are the shuffler or no one
        // has grouped us (batch 0: nobody ahead of us shuffles).
        while true {
            if cshims_u8_load_relaxed(lockedByte) == 0 {
                // 0,* -> 1,*. Acquire: pairs with the unlock's release store.
                if cshims_u8_cas_value_acquire(lockedByte, 0, 1) { break }
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
            if closesFastPath {
                // 1,1 -> 1,0 before the queue can empty (release order not needed; no relaxed variant).
                _ = cshims_u32_fetch_and_release(word, ~Self.noStealBit)
            }
            // Release: our clearing of noSteal (just above) happens-before the next first waiter's
            // setting of it, which follows its acquire exchange that reads this nil; relaxed, a new
            // first waiter's fetch_or could come first in the word's order and stealing would stay
            // enabled with a waiter queued (fairness only; ARMv8 allows it). Free on x86.
            if cshims_ptr_cas_value_release(tail, me.raw, nil) { return }
            if closesFastPath {
                // A waiter arrived: 1,0 -> 1,1 again, then wait for its link.
                _ = cshims_u32_fetch_or_acquire(word, Self.noStealBit)
            }
            repeat {
                cshims_pause()
                next = cshims_ptr_load_acquire(me.next)
            } while next == nil
        }
        // Release: our queue edits (as shuffler) before the new head reads its links.
        // (shfl-b: an exchange that wakes the new head if it still sleeps.)
        Waiting.grant(ShflNodePointer(next!).status, 1)
    }

    /// The shuffler's walk (aqswonode.c's shuffle_waiters): from where the last walk stopped, move
    /// waiters of our node up behind the batch, then appoint the batch's last waiter as the next
    /// shuffler (perhaps ourselves). At 1 walk in `passOneIn` (or once the batch is full) the role
    /// passes to our successor instead, without a walk.
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
        let counting = maxShuffles != 0
        if (counting && batch >= maxShuffles) || (passOneIn != 0 && Self.draw(me) % passOneIn == 0) {
            // Our batch is full, or the draw says so: the waiter behind us takes the role.
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
            // The tail is never visited: an arrival is about to write its `next`.
            if currentRaw == cshims_ptr_load_acquire(tail) { break }
            let current = ShflNodePointer(currentRaw)
            if cshims_u32_load_relaxed(current.numaNode) == myNode {
                if prev == last {
                    // Already right behind the batch: it just grows.
                    prev = current
                } else {
                    // Move current from behind prev to behind last. It must have a successor: one
                    // without may be the tail by now, whose `next` an arrival is about to write.
                    guard let after = cshims_ptr_load_acquire(current.next) else { break }
                    cshims_ptr_store_relaxed(prev.next, after)
                    cshims_ptr_store_relaxed(current.next, cshims_ptr_load_relaxed(last.next))
                    cshims_ptr_store_relaxed(last.next, currentRaw)
                }
                if counting { batch += 1 }
                if Self.blocking { wakeEarly(current) }
                cshims_u32_store_relaxed(current.batch, batch)
                last = current
                moved = true
                if counting && batch >= maxShuffles { break }
            } else {
                prev = current
            }
            // Stop once something moved and, at the head, the lock is free (so as not to delay
            // taking it), or, behind it, we became the head.
            if moved {
                if isHead ? cshims_u8_load_relaxed(lockedByte) == 0 : cshims_u32_load_acquire(me.status) != 0 {
                    break
                }
            }
        }
        appointShuffler(last, resumeAt: prev == last ? nil : prev)
    }

    @inline(__always) @usableFromInline
    func appointShuffler(_ node: ShflNodePointer, resumeAt: ShflNodePointer?) {
        cshims_ptr_store_relaxed(node.lastVisited, resumeAt?.raw)
        // Release: our queue edits and `lastVisited` before the new shuffler's acquire of the role.
        // A sleeping appointee is not woken (aqmwonode.c): it shuffles once woken.
        cshims_u32_store_release(node.isShuffler, 1)
    }

    /// The authors' xor_random: xorshift32 (<<6, >>21, <<7) on the owner's state.
    @inline(__always) @usableFromInline
    static func draw(_ me: ShflNodePointer) -> UInt32 {
        var v = cshims_u32_load_relaxed(me.random)
        v ^= v << 6
        v ^= v >> 21
        v ^= v << 7
        cshims_u32_store_relaxed(me.random, v)
        return v
    }

    /// shfl-b: a waiter behind the head parks (0 -> 2) until granted or woken early.
    @usableFromInline @inline(never)
    func parkWaiter(_ me: ShflNodePointer) {
        // 0 -> 2. Fails if we were granted (1) meanwhile.
        guard cshims_u32_cas_value_relaxed(me.status, 0, Self.parked) else { return }
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
