// Lock cohorting: the one skeleton of c-bo-mcs, c-tkt-tkt and c-mcs-mcs, generic over a global and a
// local lock, as Concurrency Kit's include/ck_cohort.h composes any two locks.
//
// Paper: D. Dice, V. J. Marathe, N. Shavit, "Lock Cohorting: A General Technique for Designing NUMA
// Locks", PPoPP 2012 (and ACM TOPC 1(2), 2015).
// Idea: a thread takes its node's local lock, then the global lock unless the previous local holder
// passed the global lock on with the local one. A releaser whose node has a waiter keeps the global
// lock for its node and hands over only the local lock, while the node's pass budget lasts.
// The global lock must be thread-oblivious (released by another thread of the cohort than the one
// that took it: backoff TTAS, ticket, or MCS on a queue node that belongs to the node); the local
// lock must detect its cohort (tell, with no false positive, whether a thread waits for it).
//
// The node's cohort record (passed, budget), touched only by the holder of the node's local lock:
//   lock,   passed == 0                        -> take the global lock
//   lock,   passed == 1                        -> the global lock is already ours
//   unlock, local waiter and budget > 0        -> (1, budget - 1), hand the local lock over
//   unlock, otherwise                          -> (0, budget'), release the global and local locks
// where budget' is the pass rule's (`pass-rule`):
//   0, LiTL (cbomcs.c:246-257, ctkttkt.c:158-170): `batch_count`, a node's budget of pass-limit
//      handoffs, refilled to pass-limit only when a release finds it spent with a waiter present
//      (it carries over tenures that end because the queue drained); it starts at 0 (LiTL's
//      memset, cbomcs.c:169), so each node's first contended release ends its tenure;
//   1, ck (ck_cohort.h:93, 102-108): `acquire_count`, at most pass-limit acquisitions per tenure:
//      the budget is refilled to pass-limit - 1 handoffs at every global release (and at start).
// The record is published to the next local holder by the local lock's release handover.
// Invariants:
//  - at most one node's cohort owns the global lock, and while it does, the thread in the critical
//    section holds that node's local lock;
//  - passed == 1 only while the local lock is handed to a waiter that exists, so the global lock is
//    never left owned by a node with nobody to release it;
//  - budget <= pass-limit: at most pass-limit local handoffs before the global lock is released,
//    even if local waiters remain (the bound on unfairness between nodes);
//  - the global lock is released before the local one (`releasesLocalFirst` false), which a global
//    lock on a per-node queue node needs (its next enqueue waits for the local lock), or after it
//    (LiTL's cbomcs.c:260-261), which only a global lock with no per-node state allows.
// Cohort detection is the local lock's (`hasWaiters`): a stale read can only miss a waiter that is
// just arriving, which then takes the global lock itself. (ck counts waiting threads in a shared
// counter, ck_cohort.h:85-87; LiTL and this skeleton look at the local lock's own words.)
// Layout: one block per node of 128 + Global.bytesPerNode bytes: the local lock's words on its
// first cache line (arrivals write them), the cohort record on its second (the holder writes it),
// then the global lock's per-node state (MCS: the node's queue node) on its own 128-byte block.
// The global lock's words are alone on their own block.

import CShims

/// A cohort's global lock: thread-oblivious (any thread of the owning cohort may release it).
protocol CohortGlobalLock {
    /// Bytes of per-node state in each node's block (0, or a 128-byte block), at `cohort`.
    static var bytesPerNode: Int { get }
    init(memory: LabMemory)
    /// Takes the lock for the cohort whose per-node state is at `cohort`.
    func lock(cohort: UnsafeMutableRawPointer)
    func tryLock(cohort: UnsafeMutableRawPointer) -> Bool
    /// Releases it; the caller may not be the thread that took it, but is of the same cohort.
    func unlock(cohort: UnsafeMutableRawPointer)
    func deallocate(memory: LabMemory)
}

/// A cohort's local lock: its words fit the first cache line of the node's block.
protocol CohortLocalLock {
    /// A thread's handle on its node's local lock (and its own queue node, if any).
    associatedtype Context
    static func makeContext(local: UnsafeMutableRawPointer) -> Context
    static func freeContext(_ context: Context)
    static func lock(_ context: Context)
    static func tryLock(_ context: Context) -> Bool
    /// Cohort detection, by the holder: true only if another thread waits for the local lock.
    static func hasWaiters(_ context: Context) -> Bool
    /// Releases the local lock to a waiter `hasWaiters` saw.
    static func handOver(_ context: Context)
    /// Releases the local lock, waiters or not.
    static func unlock(_ context: Context)
}

/// What names a cohort lock: its global and local lock types, its descriptor and its defaults.
protocol CohortDefinition {
    associatedtype Global: CohortGlobalLock
    associatedtype Local: CohortLocalLock
    /// Its options must include `pass-limit` and `pass-rule` (`cohortOptions`).
    static var descriptor: LockDescriptor { get }
    /// Release the local lock before the global one (allowed only with `Global.bytesPerNode == 0`).
    static var releasesLocalFirst: Bool { get }
}

/// The pass rules (`pass-rule`).
enum CohortPassRule: Int {
    /// LiTL's `batch_count`: a node's budget of pass-limit handoffs, refilled when spent.
    case litl = 0
    /// ck's `acquire_count`: at most pass-limit acquisitions per tenure.
    case ck = 1
}

/// The `pass-limit` and `pass-rule` options every cohort lock takes, with its reference's defaults.
func cohortOptions(passLimit: Int, rule: CohortPassRule) -> [LockOptionSpec] {
    [LockOptionSpec("pass-limit", default: passLimit, range: 0...(1 << 30),
                    help: "local handoffs a node may make before the global lock is released too (LiTL's BATCH_COUNT 100; ck's CK_COHORT_DEFAULT_LOCAL_PASS_LIMIT 10)"),
     LockOptionSpec("pass-rule", default: rule.rawValue, range: 0...1,
                    help: "0: LiTL's batch_count, a node's budget of pass-limit handoffs refilled when spent; 1: ck's acquire_count, pass-limit acquisitions per tenure")]
}

struct CohortLock<Definition: CohortDefinition>: LockAlgorithm {
    typealias Global = Definition.Global
    typealias Local = Definition.Local

    struct Context {
        let local: Local.Context
        /// The node's cohort record: passed flag (0 or 1) at [0], pass budget at [1]; constants of
        /// the pass rule beside them (read only by `endTenure`): the refill at [2], 1 at [3] if
        /// every release refills (ck), 0 if only a spent budget is refilled (LiTL).
        let record: UnsafeMutablePointer<UInt32>
        /// The global lock's per-node state.
        let cohort: UnsafeMutableRawPointer
    }

    static var descriptor: LockDescriptor { Definition.descriptor }

    /// Offset of the cohort record in a node's block: its second cache line.
    static var recordOffset: Int { LabMemory.alignment / 2 }
    /// Bytes per node: local lock and record (128), then the global lock's per-node state.
    static var nodeStride: Int { LabMemory.alignment + Global.bytesPerNode }

    let global: Global
    /// `nodeCount` blocks of `nodeStride` bytes, one per node.
    let nodes: UnsafeMutableRawPointer
    let nodeCount: Int
    let memory: LabMemory

    init(_ environment: LockEnvironment) throws {
        precondition(!Definition.releasesLocalFirst || Global.bytesPerNode == 0,
                     "\(Self.descriptor.name): a global lock with per-node state is released first")
        let passLimit = environment.options.int("pass-limit")
        let rule = CohortPassRule(rawValue: environment.options.int("pass-rule"))!
        // ck counts the acquisition that took the global lock: pass-limit - 1 handoffs follow it.
        let refill = UInt32(rule == .ck ? Swift.max(passLimit - 1, 0) : passLimit)
        memory = environment.memory
        nodeCount = environment.nodeCount
        global = Global(memory: memory)
        nodes = memory.allocate(bytes: Self.nodeStride * nodeCount)
        // LiTL's budget starts at 0 (the zeroed block); ck's tenure starts with a full one.
        for node in 0..<nodeCount {
            let record = (nodes + node * Self.nodeStride + Self.recordOffset).bindMemory(to: UInt32.self, capacity: 4)
            cshims_u32_store_relaxed(record + 1, rule == .ck ? refill : 0)
            cshims_u32_store_relaxed(record + 2, refill)
            cshims_u32_store_relaxed(record + 3, rule == .ck ? 1 : 0)
        }
    }

    func makeContext(for thread: ThreadSlot) -> Context {
        precondition(thread.node >= 0 && thread.node < nodeCount,
                     "\(Self.descriptor.name): thread node \(thread.node) outside 0..<\(nodeCount)")
        let block = nodes + thread.node * Self.nodeStride
        return Context(local: Local.makeContext(local: block),
                       record: (block + Self.recordOffset).bindMemory(to: UInt32.self, capacity: 4),
                       cohort: block + LabMemory.alignment)
    }

    func freeContext(_ context: inout Context) {
        Local.freeContext(context.local)
    }

    @inline(__always)
    func lock(_ context: inout Context) {
        Local.lock(context.local)
        // Relaxed: the record is only touched under the local lock, whose handover ordered its
        // last write before this read.
        if cshims_u32_load_relaxed(context.record) != 0 { return }
        global.lock(cohort: context.cohort)
    }

    @inline(__always)
    func tryLock(_ context: inout Context) -> Bool {
        guard Local.tryLock(context.local) else { return false }
        // A free local lock with no waiter was last released with the global lock (passed == 0);
        // checked anyway, as ck and LiTL do, so that trylock never depends on that.
        if cshims_u32_load_relaxed(context.record) != 0 { return true }
        if global.tryLock(cohort: context.cohort) { return true }
        // Global busy: give the local lock back (record unchanged); a waiter that queued meanwhile
        // finds passed == 0 and takes the global lock itself.
        Local.unlock(context.local)
        return false
    }

    @inline(__always)
    func unlock(_ context: inout Context) {
        // Only the local holder writes the record: relaxed reads of it are exact.
        let budget = cshims_u32_load_relaxed(context.record + 1)
        if budget != 0 && Local.hasWaiters(context.local) {
            // (passed, budget) -> (1, budget - 1); published by the handover's release.
            cshims_u32_store_relaxed(context.record, 1)
            cshims_u32_store_relaxed(context.record + 1, budget &- 1)
            Local.handOver(context.local)
            return
        }
        Self.endTenure(context, budget: budget, global: global)
    }

    /// Unlock that ends the node's tenure: (*, budget) -> (0, budget'), then both locks. Out of
    /// line (the slow path, as the stdlib's Mutex does), so that the local handover above stays
    /// small enough for the harness's loop to inline; static, with the rule's constants in the
    /// record, so that its arguments travel in registers.
    @inline(never)
    static func endTenure(_ context: Context, budget: UInt32, global: Global) {
        // LiTL refills only a spent budget with a waiter present (cbomcs.c:247-256); ck always.
        if cshims_u32_load_relaxed(context.record + 3) != 0 || (budget == 0 && Local.hasWaiters(context.local)) {
            cshims_u32_store_relaxed(context.record + 1, cshims_u32_load_relaxed(context.record + 2))
        }
        cshims_u32_store_relaxed(context.record, 0)
        if Definition.releasesLocalFirst {
            Local.unlock(context.local)
            global.unlock(cohort: context.cohort)
        } else {
            global.unlock(cohort: context.cohort)
            Local.unlock(context.local)
        }
    }

    func deallocate() {
        global.deallocate(memory: memory)
        memory.deallocate(nodes, bytes: Self.nodeStride * nodeCount)
    }
}

// MARK: - Global locks

/// Backoff test-and-test-and-set (`BackoffTTAS`), backing off while held with LiTL's constants:
/// 512 pauses first (DEFAULT_BACKOFF_DELAY 1 << 9, cbomcs.h:38), doubling while below
/// MAX_BACKOFF_DELAY (1 << 20) - 1 (cbomcs.h:39; cbomcs.c:138-139), so the last delay is 2^20.
/// Trylock is one exchange (cbomcs.c:155-160).
struct BackoffTTASGlobal: CohortGlobalLock {
    static let minPauses: UInt32 = 1 << 9
    /// LiTL's loop doubles 2^19 once more (2^19 < 2^20 - 1): the capped delays end at 2^20.
    static let maxPauses: UInt32 = 1 << 20
    static var bytesPerNode: Int { 0 }

    /// The word alone on its block: 0 free, 1 owned by some node's cohort.
    let word: UnsafeMutablePointer<UInt32>

    init(memory: LabMemory) {
        word = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 1)
    }

    @inline(__always)
    func lock(cohort: UnsafeMutableRawPointer) {
        BackoffTTAS.acquire(word, rule: .whileHeld, minPauses: Self.minPauses, maxPauses: Self.maxPauses)
    }

    @inline(__always)
    func tryLock(cohort: UnsafeMutableRawPointer) -> Bool {
        // Acquire: the exchange that returns 0 orders the critical section after it.
        cshims_u32_exchange_acquire(word, 1) == 0
    }

    @inline(__always)
    func unlock(cohort: UnsafeMutableRawPointer) {
        BackoffTTAS.release(word)
    }

    func deallocate(memory: LabMemory) {
        memory.deallocate(UnsafeMutableRawPointer(word), bytes: LabMemory.alignment)
    }
}

/// Ticket lock: `next` at [0], `owner` at [1], alone on its block. Thread-oblivious: the release
/// reads `owner`, which only the owning cohort writes.
struct TicketGlobal: CohortGlobalLock {
    static var bytesPerNode: Int { 0 }
    let ticket: UnsafeMutablePointer<UInt32>

    init(memory: LabMemory) {
        ticket = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 2)
    }

    @inline(__always)
    func lock(cohort: UnsafeMutableRawPointer) {
        TicketWords.acquire(ticket)
    }

    @inline(__always)
    func tryLock(cohort: UnsafeMutableRawPointer) -> Bool {
        TicketWords.tryAcquire(ticket)
    }

    @inline(__always)
    func unlock(cohort: UnsafeMutableRawPointer) {
        // Relaxed read is exact: `owner` last changed when this cohort was granted the lock, and
        // the local lock's release/acquire chain orders that grant before this read.
        TicketWords.release(ticket, owner: cshims_u32_load_relaxed(ticket + 1))
    }

    func deallocate(memory: LabMemory) {
        memory.deallocate(UnsafeMutableRawPointer(ticket), bytes: LabMemory.alignment)
    }
}

/// MCS lock whose queue node belongs to the NODE (the cohort), not to a thread. MCS is not
/// thread-oblivious: its release reads the releaser's queue node (`next`, then the tail CAS against
/// it). So each node's block carries one global queue node, at `cohort`: the thread that takes the
/// global lock enqueues it, and whichever thread of the cohort releases the global lock releases
/// that same node. Only the local holder touches it, and it is enqueued again (by the next tenure
/// of the node) only after the release that ended the previous tenure has returned, which happens
/// before the local lock is released. (ck_cohort leaves this to its caller, as a global context
/// argument; hmcs keeps the same per-node node in its tree.)
struct MCSGlobal: CohortGlobalLock {
    static var bytesPerNode: Int { LabMemory.alignment }
    /// Tail of the global queue (a node's `cohort` block), alone on its block.
    let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>

    init(memory: LabMemory) {
        precondition(MemoryLayout<MCSNode>.size <= LabMemory.alignment)
        tail = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
    }

    @inline(__always)
    func lock(cohort: UnsafeMutableRawPointer) {
        MCSQueue.acquire(cohort, tail: tail)
    }

    @inline(__always)
    func tryLock(cohort: UnsafeMutableRawPointer) -> Bool {
        MCSQueue.tryAcquire(cohort, tail: tail)
    }

    /// Returns only once the node's queue node is out of the global queue.
    @inline(__always)
    func unlock(cohort: UnsafeMutableRawPointer) {
        MCSQueue.release(cohort, tail: tail)
    }

    func deallocate(memory: LabMemory) {
        memory.deallocate(UnsafeMutableRawPointer(tail), bytes: LabMemory.alignment)
    }
}

// MARK: - Local locks

/// MCS lock per node: the tail at the node block's start, a per-thread queue node padded to 128
/// bytes, allocated by its thread. Cohort detection: a waiter is queued behind the holder iff
/// holder.next != nil or tail != holder. Only arrivals move the tail off the holder's node, so
/// neither test has false positives.
enum MCSLocal: CohortLocalLock {
    struct Context {
        /// The thread's own queue node.
        let node: UnsafeMutableRawPointer
        /// The node's local tail.
        let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    }

    static func makeContext(local: UnsafeMutableRawPointer) -> Context {
        // Local memory: the queue node is touched first by its own thread, after pinning.
        Context(node: LabMemory().allocatePadded(MCSNode.self),
                tail: local.bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1))
    }

    static func freeContext(_ context: Context) {
        LabMemory().deallocate(context.node, bytes: LabMemory.paddedStride(of: MCSNode.self))
    }

    @inline(__always)
    static func lock(_ context: Context) {
        MCSQueue.acquire(context.node, tail: context.tail)
    }

    @inline(__always)
    static func tryLock(_ context: Context) -> Bool {
        MCSQueue.tryAcquire(context.node, tail: context.tail)
    }

    @inline(__always)
    static func hasWaiters(_ context: Context) -> Bool {
        // Acquire on `next` (pairs with the successor's release link); relaxed on the tail: a hint.
        cshims_ptr_load_acquire(MCSQueue.nextField(context.node)) != nil
            || cshims_ptr_load_relaxed(context.tail) != context.node
    }

    @inline(__always)
    static func handOver(_ context: Context) {
        MCSQueue.handOver(context.node)
    }

    @inline(__always)
    static func unlock(_ context: Context) {
        MCSQueue.release(context.node, tail: context.tail)
    }
}

/// Ticket lock per node: `next` at [0], `owner` at [1] of the node block. Cohort detection: a
/// waiter has taken a ticket iff next != owner + 1; tickets are never returned, so no false positive.
enum TicketLocal: CohortLocalLock {
    typealias Context = UnsafeMutablePointer<UInt32>

    static func makeContext(local: UnsafeMutableRawPointer) -> Context {
        local.bindMemory(to: UInt32.self, capacity: 2)
    }

    static func freeContext(_ context: Context) {}

    @inline(__always)
    static func lock(_ context: Context) {
        TicketWords.acquire(context)
    }

    @inline(__always)
    static func tryLock(_ context: Context) -> Bool {
        TicketWords.tryAcquire(context)
    }

    @inline(__always)
    static func hasWaiters(_ context: Context) -> Bool {
        // Only the holder writes `owner`: relaxed is exact. Relaxed `next`: a hint.
        cshims_u32_load_relaxed(context) != cshims_u32_load_relaxed(context + 1) &+ 1
    }

    @inline(__always)
    static func handOver(_ context: Context) {
        unlock(context)
    }

    @inline(__always)
    static func unlock(_ context: Context) {
        TicketWords.release(context, owner: cshims_u32_load_relaxed(context + 1))
    }
}

/// The ticket lock's two words, `next` at [0] and `owner` at [1], for the cohort's ticket locks.
enum TicketWords {
    @inline(__always)
    static func acquire(_ words: UnsafeMutablePointer<UInt32>) {
        // Relaxed ticket; acquire on the `owner` load that grants (pairs with the previous
        // holder's release store, which also publishes a cohort record).
        let ticket = cshims_u32_fetch_add_relaxed(words, 1)
        while cshims_u32_load_acquire(words + 1) != ticket {
            cshims_pause()
        }
    }

    /// Takes ticket `owner` only if nobody has (next == owner), as `ticket` does.
    @inline(__always)
    static func tryAcquire(_ words: UnsafeMutablePointer<UInt32>) -> Bool {
        let serving = cshims_u32_load_acquire(words + 1)
        return cshims_u32_cas_value_acquire(words, serving, serving &+ 1)
    }

    @inline(__always)
    static func release(_ words: UnsafeMutablePointer<UInt32>, owner: UInt32) {
        // Release: the critical section happens-before the next holder's acquire of `owner`.
        cshims_u32_store_release(words + 1, owner &+ 1)
    }
}
