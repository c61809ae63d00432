// qspinlock: the Linux queued spinlock, on one 32-bit word.
//
// Source: Linux kernel/locking/qspinlock.c (W. Long, P. Zijlstra; v4.2 onwards, read at v6.x),
// include/asm-generic/qspinlock_types.h and kernel/locking/mcs_spinlock.h; the MCS queue after
// Mellor-Crummey & Scott, ACM TOCS 1991.
// Idea: a test-and-set lock word that also carries a one-waiter "pending" bit and the tail of an MCS
// queue. Uncontended, lock is one CAS 0 -> locked and unlock a byte store. The first contender sets
// pending and spins on the word (no queue node touched); later ones queue MCS-style on per-CPU nodes,
// and only the queue head spins on the word. Here the lab's threads play the CPUs: thread index i is
// "CPU" i, its node is registered in the lock's node table, and the tail index (the kernel's nesting
// level: task, softirq, hardirq, NMI) is always 0.
// Word layout (NR_CPUS < 16K, qspinlock_types.h), checked by `QSpinlockLayout` and its tests:
//   bits  0- 7  locked byte       (_Q_LOCKED_VAL = 1)
//   bits  8-15  pending byte      (_Q_PENDING_VAL = 1 << 8; only bit 8 is used)
//   bits 16-17  tail index        (the node's nesting level; 0 here)
//   bits 18-31  tail CPU + 1      (0: no tail)
// Transitions, (tail, pending, locked) as qspinlock.c writes them, each beside the code below:
//   0,0,0 -> 0,0,1   fast path: CAS                                  lock()
//   0,0,1 -> 0,1,1   first contender: fetch_or pending               lockSlow
//   0,1,1 -> 0,1,0   the owner unlocks (byte store)                  unlock()
//   0,1,0 -> 0,0,1   pending takes over: one 16-bit store            lockSlow
//   p,*,* -> n,*,*   queue: exchange of the tail half                queue
//   *,x,y -> *,0,0   the queue head waits for owner and pending      queue
//   n,0,0 -> 0,0,1   head is the last queued: CAS clears the tail    tryClearTail
//   *,*,0 -> *,*,1   head with followers: sets the locked byte,      queue, passLock
//                    then makes its successor the head (MCS handoff)
// Invariants:
//  - the lock is held iff the locked byte is 1; at most one thread (the pending one) spins on the
//    word outside the queue, and at most one (the queue head) inside it;
//  - a queued node's `locked` is 0 until its predecessor makes it the head; only the head reads
//    the word in the queue path; nodes are in use only inside the slow path (a holder has none),
//    so unlock needs no context and a node is free again when lock() returns;
//  - mixed-size accesses as in the kernel on x86-64 and arm64: the word is CASed and fetch_or'ed as
//    32 bits, the locked byte, the pending byte, locked+pending (16 bits) and the tail (16 bits)
//    are stored or exchanged alone: little-endian only (checked below).
// Parameters: _Q_PENDING_LOOPS = 512 (x86's value; the generic one is 1), the bound on waiting for
// a pending -> locked hand-over in progress before queueing.
// The slow path's queue is a type parameter: `QSpinlockMCS` is qspinlock.c's, `QSpinlockCNA` the
// CNA patch series' (qspinlock-cna, QSpinlockCNA.swift), through the hooks the kernel itself uses for
// both (pv_wait_head_or_lock, try_clear_tail, mcs_pass_lock).
// Layout: the word alone on a 128-byte block, the node table on the next; nodes 128-byte padded.

import CShims

#if !_endian(little)
#error("qspinlock stores the locked byte, pending byte and tail half of its word alone: little-endian only")
#endif

/// The word's fields (include/asm-generic/qspinlock_types.h, NR_CPUS < 16K).
public enum QSpinlockLayout {
    public static let lockedOffset: UInt32 = 0
    public static let lockedBits: UInt32 = 8
    public static let pendingOffset: UInt32 = 8
    public static let pendingBits: UInt32 = 8
    public static let tailIndexOffset: UInt32 = 16
    public static let tailIndexBits: UInt32 = 2
    public static let tailCPUOffset: UInt32 = 18
    public static let tailCPUBits: UInt32 = 14

    public static let lockedValue: UInt32 = 1 << lockedOffset                              // _Q_LOCKED_VAL
    public static let pendingValue: UInt32 = 1 << pendingOffset                            // _Q_PENDING_VAL
    public static let lockedMask: UInt32 = ((1 << lockedBits) - 1) << lockedOffset         // 0x000000ff
    public static let pendingMask: UInt32 = ((1 << pendingBits) - 1) << pendingOffset      // 0x0000ff00
    public static let lockedPendingMask: UInt32 = lockedMask | pendingMask                 // 0x0000ffff
    public static let tailIndexMask: UInt32 = ((1 << tailIndexBits) - 1) << tailIndexOffset // 0x00030000
    public static let tailCPUMask: UInt32 = ((1 << tailCPUBits) - 1) << tailCPUOffset       // 0xfffc0000
    public static let tailMask: UInt32 = tailIndexMask | tailCPUMask                       // 0xffff0000
    /// Most CPUs (threads) a tail can name.
    public static let maxCPUs = (1 << Int(tailCPUBits)) - 1

    /// encode_tail(cpu, idx): CPU + 1 so that 0 means "no tail".
    @inline(__always)
    public static func encodeTail(cpu: Int, index: Int) -> UInt32 {
        (UInt32(cpu + 1) << tailCPUOffset) | (UInt32(index) << tailIndexOffset)
    }

    /// decode_tail: the (cpu, index) a non-zero tail names.
    @inline(__always)
    public static func decodeTail(_ tail: UInt32) -> (cpu: Int, index: Int) {
        (Int(tail >> tailCPUOffset) - 1, Int((tail & tailIndexMask) >> tailIndexOffset))
    }
}

/// A qspinlock queue node: mcs_spinlock's `next` and `locked`, and what the CNA slow path adds
/// (struct cna_node), unused by plain qspinlock.
@usableFromInline
struct QSpinlockNode {
    @usableFromInline var next: UnsafeMutableRawPointer?
    /// 0 while queued behind another node; non-zero once the head (CNA: 1, or the encoded tail of
    /// the secondary queue, which then travels with the head position).
    @usableFromInline var locked: UInt32
    /// This node's own tail code (encode_tail(cpu, 0)).
    @usableFromInline var encodedTail: UInt32
    /// CNA: the NUMA node the queue prefers, passed from head to head.
    @usableFromInline var numaNode: UInt32
    /// CNA: the owner's NUMA node (ThreadSlot.node).
    @usableFromInline var realNumaNode: UInt32
    /// CNA: cycle-counter reading when the secondary queue was formed; 0 none; 1 flush it.
    @usableFromInline var startTime: UInt64
    /// CNA: the owner's next_pseudo_random32 state (the kernel's per-CPU seed, from 0).
    @usableFromInline var seed: UInt32
}

/// A pointer to a qspinlock node, with the address of each field for the atomics.
public struct QSpinlockNodePointer: Equatable {
    @usableFromInline let raw: UnsafeMutableRawPointer

    @inline(__always) @usableFromInline
    init(_ raw: UnsafeMutableRawPointer) { self.raw = raw }

    @inline(__always) @usableFromInline
    var next: UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (raw + MemoryLayout<QSpinlockNode>.offset(of: \QSpinlockNode.next)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) @usableFromInline
    var locked: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<QSpinlockNode>.offset(of: \QSpinlockNode.locked)!).assumingMemoryBound(to: UInt32.self)
    }
    @inline(__always) @usableFromInline
    var encodedTail: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<QSpinlockNode>.offset(of: \QSpinlockNode.encodedTail)!).assumingMemoryBound(to: UInt32.self)
    }
    @inline(__always) @usableFromInline
    var numaNode: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<QSpinlockNode>.offset(of: \QSpinlockNode.numaNode)!).assumingMemoryBound(to: UInt32.self)
    }
    @inline(__always) @usableFromInline
    var realNumaNode: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<QSpinlockNode>.offset(of: \QSpinlockNode.realNumaNode)!).assumingMemoryBound(to: UInt32.self)
    }
    @inline(__always) @usableFromInline
    var startTime: UnsafeMutablePointer<UInt64> {
        (raw + MemoryLayout<QSpinlockNode>.offset(of: \QSpinlockNode.startTime)!).assumingMemoryBound(to: UInt64.self)
    }
    @inline(__always) @usableFromInline
    var seed: UnsafeMutablePointer<UInt32> {
        (raw + MemoryLayout<QSpinlockNode>.offset(of: \QSpinlockNode.seed)!).assumingMemoryBound(to: UInt32.self)
    }
}

/// The lock word and the node table: what the slow-path hooks get, as the kernel's get `lock`.
public struct QSpinlockWord {
    @usableFromInline let word: UnsafeMutablePointer<UInt32>
    /// Node of "CPU" i at i (the kernel's per-CPU qnodes[0]).
    @usableFromInline let nodes: UnsafeMutablePointer<UnsafeMutableRawPointer?>

    @inline(__always) @usableFromInline
    init(word: UnsafeMutablePointer<UInt32>, nodes: UnsafeMutablePointer<UnsafeMutableRawPointer?>) {
        self.word = word
        self.nodes = nodes
    }

    /// The locked byte (byte 0), the pending byte (byte 1), locked+pending (bytes 0-1), the tail (bytes 2-3).
    @inline(__always) @usableFromInline
    var lockedByte: UnsafeMutablePointer<UInt8> { UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt8.self) }
    @inline(__always) @usableFromInline
    var pendingByte: UnsafeMutablePointer<UInt8> { (UnsafeMutableRawPointer(word) + 1).assumingMemoryBound(to: UInt8.self) }
    @inline(__always) @usableFromInline
    var lockedPending: UnsafeMutablePointer<UInt16> { UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt16.self) }
    @inline(__always) @usableFromInline
    var tailHalf: UnsafeMutablePointer<UInt16> { (UnsafeMutableRawPointer(word) + 2).assumingMemoryBound(to: UInt16.self) }

    /// decode_tail: the node a non-zero tail names. Relaxed: the entry was written before the node
    /// was first published, and the caller read the tail with acquire.
    @inline(__always) @usableFromInline
    func decode(_ tail: UInt32) -> QSpinlockNodePointer {
        let cpu = QSpinlockLayout.decodeTail(tail).cpu
        return QSpinlockNodePointer(cshims_ptr_load_relaxed(nodes + cpu).unsafelyUnwrapped)
    }
}

/// The slow path's queue policy: the hooks qspinlock.c calls at the points where the kernel's
/// paravirt and CNA variants differ from plain MCS.
public protocol QSpinlockSlowPath {
    static var name: String { get }
    static var family: LockFamily { get }
    static var paper: String { get }
    static var options: [LockOptionSpec] { get }
    init(_ environment: LockEnvironment)
    /// Called when the node is initialised for this acquisition (pv_init_node / cna_init_node).
    func initNode(_ node: QSpinlockNodePointer)
    /// Called once the node is the queue head, before it waits for owner and pending to go away
    /// (pv_wait_head_or_lock; CNA sorts the queue here).
    func waitHeadOrLock(_ lock: QSpinlockWord, _ node: QSpinlockNodePointer)
    /// The head is the last queued node: take the lock and clear the tail (n,0,0 -> 0,0,1) if the
    /// word still reads `value`; true if taken (try_clear_tail).
    func tryClearTail(_ lock: QSpinlockWord, _ value: UInt32, _ node: QSpinlockNodePointer) -> Bool
    /// The head holds the lock and `next` follows it: make the next head (mcs_pass_lock).
    func passLock(_ lock: QSpinlockWord, _ node: QSpinlockNodePointer, _ next: QSpinlockNodePointer)
}

/// qspinlock.c's own queue: plain MCS.
public struct QSpinlockMCS: QSpinlockSlowPath {
    public static var name: String { "qspinlock" }
    public static var family: LockFamily { .kernel }
    public static var paper: String { "Linux kernel/locking/qspinlock.c (Long, Zijlstra; 32-bit word, MCS slow path)" }
    public static var options: [LockOptionSpec] { [] }
    public init(_ environment: LockEnvironment) {}

    @inline(__always) public func initNode(_ node: QSpinlockNodePointer) {}
    @inline(__always) public func waitHeadOrLock(_ lock: QSpinlockWord, _ node: QSpinlockNodePointer) {}

    @inline(__always)
    public func tryClearTail(_ lock: QSpinlockWord, _ value: UInt32, _ node: QSpinlockNodePointer) -> Bool {
        // n,0,0 -> 0,0,1. Relaxed: the head's acquire was its load of the word reading 0,0.
        cshims_u32_cas_value_relaxed(lock.word, value, QSpinlockLayout.lockedValue)
    }

    @inline(__always)
    public func passLock(_ lock: QSpinlockWord, _ node: QSpinlockNodePointer, _ next: QSpinlockNodePointer) {
        // arch_mcs_spin_unlock_contended: release, so the new head sees our queue state.
        cshims_u32_store_release(next.locked, 1)
    }
}

public typealias QSpinlockLock = QSpinlock<QSpinlockMCS>

public struct QSpinlock<SlowPath: QSpinlockSlowPath>: LockAlgorithm {
    public struct Context {
        @usableFromInline let node: QSpinlockNodePointer
    }

    public static var descriptor: LockDescriptor {
        LockDescriptor(name: SlowPath.name, family: SlowPath.family, waiting: .spin, paper: SlowPath.paper,
                       supportsTryLock: true, maxThreads: QSpinlockLayout.maxCPUs, options: SlowPath.options)
    }

    /// _Q_PENDING_LOOPS on x86 (arch/x86/include/asm/qspinlock.h); the generic value is 1.
    @usableFromInline static var pendingLoops: Int { 1 << 9 }

    @usableFromInline let lock: QSpinlockWord
    @usableFromInline let slowPath: SlowPath
    @usableFromInline let memory: LabMemory
    @usableFromInline let maxThreads: Int

    @usableFromInline var tableBytes: Int { max(LabMemory.alignment, maxThreads * MemoryLayout<UnsafeMutableRawPointer?>.stride) }

    public init(_ environment: LockEnvironment) throws {
        guard environment.maxThreads <= QSpinlockLayout.maxCPUs else {
            throw LockError.tooManyThreads(lock: Self.descriptor.name, threads: environment.maxThreads,
                                           max: QSpinlockLayout.maxCPUs)
        }
        memory = environment.memory
        maxThreads = environment.maxThreads
        slowPath = SlowPath(environment)
        let word = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 1)
        let nodes = memory.allocate(bytes: max(LabMemory.alignment, environment.maxThreads * MemoryLayout<UnsafeMutableRawPointer?>.stride))
            .bindMemory(to: UnsafeMutableRawPointer?.self, capacity: environment.maxThreads)
        lock = QSpinlockWord(word: word, nodes: nodes)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        precondition(thread.index >= 0 && thread.index < maxThreads,
                     "\(Self.descriptor.name): thread index \(thread.index) outside 0..<\(maxThreads)")
        // Local memory: the node is touched first by its own thread, after pinning.
        let raw = LabMemory().allocatePadded(QSpinlockNode.self)
        raw.bindMemory(to: QSpinlockNode.self, capacity: 1)
        let node = QSpinlockNodePointer(raw)
        // Written before the node is first published (by the tail exchange, release).
        cshims_u32_store_relaxed(node.encodedTail, QSpinlockLayout.encodeTail(cpu: thread.index, index: 0))
        cshims_u32_store_relaxed(node.realNumaNode, UInt32(truncatingIfNeeded: thread.node))
        cshims_u32_store_relaxed(node.numaNode, UInt32(truncatingIfNeeded: thread.node))
        cshims_u32_store_relaxed(node.seed, 0)  // CNA probably()'s seed: the kernel's per-CPU one starts at 0
        cshims_ptr_store_relaxed(lock.nodes + thread.index, raw)
        return Context(node: node)
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(context.node.raw, bytes: LabMemory.paddedStride(of: QSpinlockNode.self))
    }

    /// The word, for tests.
    var wordValue: UInt32 { cshims_u32_load_acquire(lock.word) }

    @inline(__always)
    public func lock(_ context: inout Context) {
        // 0,0,0 -> 0,0,1. Acquire: pairs with the release store of the previous unlock.
        if cshims_u32_cas_value_acquire(lock.word, 0, QSpinlockLayout.lockedValue) { return }
        lockSlow(context.node)
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        // queued_spin_trylock: only from 0,0,0 (a queued or pending waiter makes it fail).
        if cshims_u32_load_relaxed(lock.word) != 0 { return false }
        return cshims_u32_cas_value_acquire(lock.word, 0, QSpinlockLayout.lockedValue)
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        // *,*,1 -> *,*,0. Release: the critical section happens-before the next acquire of the word.
        cshims_u8_store_release(lock.lockedByte, 0)
    }

    /// queued_spin_lock_slowpath.
    @usableFromInline @inline(never)
    func lockSlow(_ node: QSpinlockNodePointer) {
        typealias Q = QSpinlockLayout
        var value = cshims_u32_load_relaxed(lock.word)
        // 0,1,0 -> 0,0,1 in progress: wait a bounded time for the pending waiter to take over.
        if value == Q.pendingValue {
            var loops = Self.pendingLoops
            while value == Q.pendingValue && loops > 0 {
                cshims_pause()
                loops -= 1
                value = cshims_u32_load_relaxed(lock.word)
            }
        }
        // Any contention beyond the owner (a pending waiter or a queue): queue.
        if value & ~Q.lockedMask != 0 {
            queue(node)
            return
        }
        // 0,0,* -> 0,1,*: trylock || pending. Acquire: if the locked byte reads 0 we own the lock.
        value = cshims_u32_fetch_or_acquire(lock.word, Q.pendingValue)
        // If we observe contention, there is a concurrent locker. Undo our pending bit (only if we
        // set it: it was clear) and queue: 0,1,* -> 0,0,*.
        if value & ~Q.lockedMask != 0 {
            if value & Q.pendingMask == 0 {
                cshims_u8_store_relaxed(lock.pendingByte, 0)
            }
            queue(node)
            return
        }
        // 0,1,1 -> *,1,0: wait for the owner to go away. Acquire: pairs with its unlock's release.
        if value & Q.lockedMask != 0 {
            while cshims_u8_load_acquire(lock.lockedByte) != 0 {
                cshims_pause()
            }
        }
        // 0,1,0 -> 0,0,1: take ownership and clear pending in one 16-bit store (the tail half may
        // change beside it; clear_pending_set_locked).
        cshims_u16_store_relaxed(lock.lockedPending, UInt16(Q.lockedValue))
    }

    /// The queue part of the slow path.
    @usableFromInline
    func queue(_ node: QSpinlockNodePointer) {
        typealias Q = QSpinlockLayout
        let tail = cshims_u32_load_relaxed(node.encodedTail)
        cshims_u32_store_relaxed(node.locked, 0)
        cshims_ptr_store_relaxed(node.next, nil)
        slowPath.initNode(node)
        // We touched a cold node; the lock may be free by now (queued_spin_trylock).
        if cshims_u32_load_relaxed(lock.word) == 0
            && cshims_u32_cas_value_acquire(lock.word, 0, Q.lockedValue) { return }
        // p,*,* -> n,*,*: publish our node as the tail. acq_rel: release publishes the node's
        // initialisation (the kernel's smp_wmb); acquire makes the predecessor's node readable.
        let old = UInt32(cshims_u16_exchange_acq_rel(lock.tailHalf, UInt16(truncatingIfNeeded: tail >> 16))) << 16
        var next: QSpinlockNodePointer? = nil
        if old & Q.tailMask != 0 {
            let prev = lock.decode(old)
            // Link behind the predecessor. Release: it reads our initialised node through the link.
            cshims_ptr_store_release(prev.next, node.raw)
            // Wait to be the head (arch_mcs_spin_lock_contended). Acquire: pairs with passLock.
            while cshims_u32_load_acquire(node.locked) == 0 {
                cshims_pause()
            }
            // Acquire: the successor's node, through its link.
            next = cshims_ptr_load_acquire(node.next).map(QSpinlockNodePointer.init)
        }
        // We are the head (CNA sorts the queue here while the lock is busy).
        slowPath.waitHeadOrLock(lock, node)
        // *,x,y -> *,0,0: wait for the owner and the pending waiter to go away. Acquire: pairs with
        // the owner's unlock (the pending waiter has become the owner before it goes away).
        var value: UInt32
        repeat {
            value = cshims_u32_load_acquire(lock.word)
            if value & Q.lockedPendingMask == 0 { break }
            cshims_pause()
        } while true
        // n,0,0 -> 0,0,1: we are the last queued; take the lock and clear the tail at once.
        if value & Q.tailMask == tail {
            if slowPath.tryClearTail(lock, value, node) { return }
        }
        // *,*,0 -> *,*,1: someone queued behind us; take the lock (nobody else may set it now:
        // newcomers see the tail and queue, and there is no pending waiter).
        cshims_u8_store_relaxed(lock.lockedByte, 1)
        // Wait for the successor's link if we have not seen it, then make it the head.
        var successor = next
        while successor == nil {
            cshims_pause()
            successor = cshims_ptr_load_acquire(node.next).map(QSpinlockNodePointer.init)
        }
        slowPath.passLock(lock, node, successor!)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(lock.word), bytes: LabMemory.alignment)
        memory.deallocate(UnsafeMutableRawPointer(lock.nodes), bytes: tableBytes)
    }
}
