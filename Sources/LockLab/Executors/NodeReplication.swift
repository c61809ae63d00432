// nr: node replication. One replica of the structure per node, one shared log of updates, flat
// combining inside each node, reads on the local replica.
//
// Paper: I. Calciu, S. Sen, M. Balakrishnan, M. K. Aguilera, "Black-box Concurrent Data Structures
// for NUMA Architectures", ASPLOS 2017. The log, its garbage collection, the combiner and the read
// path follow the Rust crate node-replication (github vmware/node-replication,
// node-replication/src/log.rs `append`/`exec`/`advance_head`, nr/replica.rs `combine`/`execute`,
// nr/mod.rs `execute_mut`'s Sync step, nr/rwlock.rs), named below by function.
// Idea: every node holds a replica of the sequential structure (the harness builds it once per
// node, `replicas(nodeCount:)`). An update is posted in its thread's slot; whoever takes its
// node's combiner lock collects the node's pending updates, reserves that many log entries with
// one CAS on the log's tail, writes them, and replays the log from its replica's local tail up to
// the tail, under the replica's writer lock, answering each of its node's threads from its own
// replica. A read waits until its replica has replayed up to the completed tail it saw at its
// start (replaying it itself if no combiner does), then reads the local replica under the
// replica's reader lock: it touches neither the log nor another node's memory.
// Invariants:
//  - the log order is the linearisation of updates: every replica applies the entries in log
//    order, each once; replica r's local tail `ltail[r]` only grows, and only the holder of r's
//    combiner lock moves it;
//  - an entry is read only after its writer released its alive word with the value of its lap
//    (log.rs keeps a per-replica mask that flips at each wrap; it always equals 1 - lap parity of
//    the logical index, which is what is computed here), and a slot is written again only after
//    every replica's local tail has passed its previous use: an append reserves entries only while
//    tail <= head + size - gc (log.rs `append`), head is a minimum of the local tails, and
//    `gc` (the crate's GC_FROM_HEAD, its largest batch) is here the largest batch, one pending
//    update per client thread;
//  - a replica is written only by the holder of its combiner lock, with its writer flag set and
//    every reader flag of its node clear: the reader stores its flag and then loads the writer
//    flag, the writer stores its flag and then loads the readers', all seq_cst (a Dekker pair:
//    nr/rwlock.rs's reader uses a fetch_add, a full barrier on x86, for the same store-load order);
//  - a read starts only once its replica's local tail is at least the completed tail `ctail` it
//    loaded first (log.rs `is_replica_synced_for_reads`), so it sees every update that completed
//    before it began; `ctail` is raised (a CAS max) by every replay, before its responses go out;
//  - a combiner that finds the log full because another replica lags takes that replica's
//    combiner lock if free and replays it (nr/mod.rs `execute_mut`: ReplicaError::NoLogSpace, then
//    `Replica::sync` of the stuck replica), so a node whose threads are idle never blocks the
//    others; when the laggard is its own replica it replays its own.
// Waits spin with `pause` and yield only when the run's threads share CPUs (Delegation.swift).
// Options: `log-bytes`, the log's size: 2 MiB, the crate's DEFAULT_LOG_BYTES ("a good
// space/performance trade-off", log.rs), in 64-byte entries (the crate's Entry is
// `repr(align(64))`): 32,768 entries; rounded up to a power of two of at least 2 x gc entries.

import CShims

/// One log entry, alone in 64 bytes: the operation, the replica that appended it, and the alive
/// word its writer releases last.
@usableFromInline
struct NRLogEntry {
    @usableFromInline var operation: Operation
    @usableFromInline var replica: UInt64
    @usableFromInline var alive: UInt64
}

/// A thread's update slot in its replica's block, alone in 128 bytes.
@usableFromInline
struct NRSlot {
    @usableFromInline var operation: Operation
    @usableFromInline var result: UInt64
    /// 1 from the owner's post until a combiner has answered it.
    @usableFromInline var pending: UInt64
}

/// Deliberately broken variants, for the tests that show the checks catch them (never set by
/// the catalog).
@usableFromInline
enum NRFault: Sendable {
    case none
    /// Reads do not wait for the completed tail: a lagging replica answers with an old state.
    case staleRead
    /// Replica 1's replay skips every 97th entry.
    case skipEntry
    /// The head moves to the most advanced local tail, not the least: a log slot is reused before
    /// every replica replayed it. (A replay that meets its entry overwritten applies what it
    /// finds, as a log without lap bits would, rather than wait for a lap that never comes.)
    case earlyReuse
}

public struct NodeReplicationExecutor: Executor {
    public struct Context {
        @usableFromInline let replica: Int
        /// The thread's rank among its replica's threads: its slot and reader flag.
        @usableFromInline let rank: Int
        @usableFromInline let thread: Int
    }

    public static let descriptor = LockDescriptor(
        name: "nr", family: .delegation, waiting: .spin,
        paper: "Calciu, Sen, Balakrishnan & Aguilera, ASPLOS 2017",
        supportsTryLock: false,
        options: [
            LockOptionSpec("log-bytes", default: 2 * 1024 * 1024, range: 4096...(1 << 30), powerOfTwo: true,
                           help: "the shared log's size, bytes, 64 per entry (node-replication's DEFAULT_LOG_BYTES: 2 MiB)"),
        ])

    public static var readSharing: ReadSharing { .shared }

    /// One replica per node of the run.
    @inline(__always)
    public static func replicas(nodeCount: Int) -> Int { max(1, nodeCount) }

    // The log: block 0 tail, block 1 head, block 2 ctail; then one block per replica's local tail;
    // then the entries.
    @usableFromInline let shared: UnsafeMutableRawPointer
    @usableFromInline let entries: UnsafeMutablePointer<NRLogEntry>
    /// Entries in the log (a power of two) and its mask, log2 and gc margin.
    @usableFromInline let size: UInt64
    @usableFromInline let sizeShift: UInt64
    @usableFromInline let gc: UInt64
    @usableFromInline let replicaCount: Int
    /// Per replica: block 0 combiner lock, 1 writer flag, 2 registered threads, 3 the replica's
    /// most lag seen (its combiners only); then a reader flag per rank, a slot per rank, and the
    /// batch buffers (operations, then the ranks they came from).
    @usableFromInline let blocks: UnsafeMutablePointer<UnsafeMutableRawPointer>
    /// Threads a replica can hold (every client could be on one node).
    @usableFromInline let capacity: Int
    @usableFromInline let tally: CombiningTally
    @usableFromInline let yields: Bool
    @usableFromInline let fault: NRFault
    let memory: LabMemory
    let logBytes: Int
    let replicaBlockBytes: Int

    static let header = 4 * 128
    @usableFromInline static let entryStride = 64

    public init(_ environment: ExecutorEnvironment) throws {
        try self.init(environment, fault: .none)
    }

    init(_ environment: ExecutorEnvironment, fault: NRFault) throws {
        self.fault = fault
        memory = environment.memory
        replicaCount = Self.replicas(nodeCount: environment.nodeCount)
        capacity = environment.clientThreads
        yields = environment.threadsShareCPUs
        gc = UInt64(capacity)
        let asked = environment.options.int("log-bytes") / Self.entryStride
        var n = 1
        while n < max(asked, 2 * capacity) { n <<= 1 }
        size = UInt64(n)
        sizeShift = UInt64(n.trailingZeroBitCount)
        logBytes = (3 + replicaCount) * 128 + n * Self.entryStride
        shared = memory.allocate(bytes: logBytes)
        entries = (shared + (3 + replicaCount) * 128).bindMemory(to: NRLogEntry.self, capacity: n)
        for i in 0..<n {
            (UnsafeMutableRawPointer(entries) + i * Self.entryStride).bindMemory(to: NRLogEntry.self, capacity: 1)
                .initialize(to: NRLogEntry(operation: Operation(code: 0), replica: 0, alive: 0))
        }
        replicaBlockBytes = Self.header + 2 * capacity * 128 + capacity * (MemoryLayout<Operation>.stride + 8)
        blocks = .allocate(capacity: replicaCount)
        for r in 0..<replicaCount {
            // Zeroed: free locks, no flags, no thread registered, nothing pending.
            (blocks + r).initialize(to: memory.allocate(bytes: replicaBlockBytes))
        }
        tally = CombiningTally(threads: capacity, memory: memory)
    }

    // --- addresses ------------------------------------------------------------------------------

    @usableFromInline var tail: UnsafeMutablePointer<UInt64> { shared.assumingMemoryBound(to: UInt64.self) }
    @usableFromInline var head: UnsafeMutablePointer<UInt64> { (shared + 128).assumingMemoryBound(to: UInt64.self) }
    @usableFromInline var ctail: UnsafeMutablePointer<UInt64> { (shared + 256).assumingMemoryBound(to: UInt64.self) }
    @inline(__always) @usableFromInline
    func ltail(_ r: Int) -> UnsafeMutablePointer<UInt64> { (shared + (3 + r) * 128).assumingMemoryBound(to: UInt64.self) }
    @inline(__always) @usableFromInline
    func entry(_ i: UInt64) -> UnsafeMutablePointer<NRLogEntry> {
        (UnsafeMutableRawPointer(entries) + Int(i & (size &- 1)) &* Self.entryStride).assumingMemoryBound(to: NRLogEntry.self)
    }
    @inline(__always) @usableFromInline
    static func aliveWord(_ e: UnsafeMutablePointer<NRLogEntry>) -> UnsafeMutablePointer<UInt64> {
        (UnsafeMutableRawPointer(e) + MemoryLayout<NRLogEntry>.offset(of: \NRLogEntry.alive)!).assumingMemoryBound(to: UInt64.self)
    }
    /// The alive value of logical entry `i`: 1 on even laps, 0 on odd ones (entries start at 0).
    @inline(__always) @usableFromInline
    func aliveValue(_ i: UInt64) -> UInt64 { 1 &- ((i >> sizeShift) & 1) }

    @inline(__always) @usableFromInline
    func combinerLock(_ r: Int) -> UnsafeMutablePointer<UInt32> { blocks[r].assumingMemoryBound(to: UInt32.self) }
    @inline(__always) @usableFromInline
    func writerFlag(_ r: Int) -> UnsafeMutablePointer<UInt64> { (blocks[r] + 128).assumingMemoryBound(to: UInt64.self) }
    @inline(__always) @usableFromInline
    func registered(_ r: Int) -> UnsafeMutablePointer<UInt64> { (blocks[r] + 256).assumingMemoryBound(to: UInt64.self) }
    @inline(__always) @usableFromInline
    func maxLag(_ r: Int) -> UnsafeMutablePointer<UInt64> { (blocks[r] + 384).assumingMemoryBound(to: UInt64.self) }
    @inline(__always) @usableFromInline
    func readerFlag(_ r: Int, _ rank: Int) -> UnsafeMutablePointer<UInt64> {
        (blocks[r] + Self.header + rank &* 128).assumingMemoryBound(to: UInt64.self)
    }
    @inline(__always) @usableFromInline
    func slot(_ r: Int, _ rank: Int) -> UnsafeMutablePointer<NRSlot> {
        (blocks[r] + Self.header + (capacity &+ rank) &* 128).assumingMemoryBound(to: NRSlot.self)
    }
    @inline(__always) @usableFromInline
    static func pendingWord(_ s: UnsafeMutablePointer<NRSlot>) -> UnsafeMutablePointer<UInt64> {
        (UnsafeMutableRawPointer(s) + MemoryLayout<NRSlot>.offset(of: \NRSlot.pending)!).assumingMemoryBound(to: UInt64.self)
    }
    /// The combiner's batch: operations, then the ranks they came from, then their results.
    @inline(__always) @usableFromInline
    func batch(_ r: Int) -> UnsafeMutablePointer<Operation> {
        (blocks[r] + Self.header + 2 &* capacity &* 128).assumingMemoryBound(to: Operation.self)
    }
    @inline(__always) @usableFromInline
    func batchRanks(_ r: Int) -> UnsafeMutablePointer<UInt64> {
        (UnsafeMutableRawPointer(batch(r)) + capacity &* MemoryLayout<Operation>.stride).assumingMemoryBound(to: UInt64.self)
    }

    // --- threads --------------------------------------------------------------------------------

    public func makeContext(for thread: ThreadSlot) -> Context {
        let r = thread.node % replicaCount
        // The crate's Replica::register: ranks in registration order (before the start barrier).
        let rank = Int(cshims_u64_fetch_add_acq_rel(registered(r), 1))
        precondition(rank < capacity, "more threads registered on a replica than the run has clients")
        return Context(replica: r, rank: rank, thread: thread.index)
    }

    // --- updates --------------------------------------------------------------------------------

    /// An update: post it, then combine if the replica's combiner lock is free, else wait to be
    /// answered (nr/replica.rs `execute_mut`, `try_combine`, `get_response`).
    @inline(__always)
    public func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        let r = context.replica
        let s = slot(r, context.rank)
        s.pointee.operation = op
        // Release: the operation is visible to the combiner that sees pending == 1.
        cshims_u64_store_release(Self.pendingWord(s), 1)
        var polls = 0
        while true {
            // Acquire pairs with the combiner's release of pending: the result is visible.
            if cshims_u64_load_acquire(Self.pendingWord(s)) == 0 { return s.pointee.result }
            let lock = combinerLock(r)
            if cshims_u32_load_relaxed(lock) == 0 && cshims_u32_exchange_acquire(lock, 1) == 0 {
                combine(r, target, thread: context.thread)
                // Release: the replica's and the batch's writes before the next combiner's.
                cshims_u32_store_release(lock, 0)
                continue
            }
            DelegationWait.pause(&polls, yields: yields)
        }
    }

    /// A read: wait until the local replica has replayed up to the completed tail seen first
    /// (taking the combiner role to replay it when the lock is free), then read it under the
    /// replica's reader lock (nr/replica.rs `execute`, nr/rwlock.rs `read`).
    @inline(__always)
    public func executeRead<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        let r = context.replica
        // Acquire: a completed tail raised before an update answered is seen by a read after it.
        let completed = cshims_u64_load_acquire(ctail)
        var polls = 0
        // Acquire pairs with the replay's release of the local tail: the replica's state is visible.
        while fault != .staleRead && cshims_u64_load_acquire(ltail(r)) < completed {
            let lock = combinerLock(r)
            if cshims_u32_load_relaxed(lock) == 0 && cshims_u32_exchange_acquire(lock, 1) == 0 {
                combine(r, target.updates, thread: context.thread)
                cshims_u32_store_release(lock, 0)
            } else {
                DelegationWait.pause(&polls, yields: yields)
            }
        }
        let flag = readerFlag(r, context.rank)
        let writer = writerFlag(r)
        while true {
            while cshims_u64_load_acquire(writer) != 0 { DelegationWait.pause(&polls, yields: yields) }
            // seq_cst store then seq_cst load: the writer's own pair (writeLock) sees this flag,
            // or this load sees its flag (header).
            cshims_u64_store_seq_cst(flag, 1)
            if cshims_u64_load_seq_cst(writer) == 0 { break }
            cshims_u64_store_relaxed(flag, 0)
        }
        let result = target.replica(r).apply(op)
        // Release: the read's loads come before a writer sees the flag clear.
        cshims_u64_store_release(flag, 0)
        return result
    }

    /// Sets replica r's writer flag and waits for its readers to leave. Combiner lock held.
    @inline(__always) @usableFromInline
    func writeLock(_ r: Int) {
        cshims_u64_store_seq_cst(writerFlag(r), 1)
        let readers = min(Int(cshims_u64_load_acquire(registered(r))), capacity)
        var polls = 0
        for k in 0..<readers {
            while cshims_u64_load_seq_cst(readerFlag(r, k)) != 0 { DelegationWait.pause(&polls, yields: yields) }
        }
    }

    @inline(__always) @usableFromInline
    func writeUnlock(_ r: Int) {
        // Release: the replay's writes come before a reader that sees the flag clear.
        cshims_u64_store_release(writerFlag(r), 0)
    }

    /// One combining pass on replica r (combiner lock held): collect the node's pending updates,
    /// append them, replay the log, answer them (nr/replica.rs `combine`).
    @inline(never) @usableFromInline
    func combine<T: OperationTarget>(_ r: Int, _ target: T, thread: Int) {
        let n = min(Int(cshims_u64_load_acquire(registered(r))), capacity)
        let ops = batch(r)
        let ranks = batchRanks(r)
        var k = 0
        for rank in 0..<n {
            let s = slot(r, rank)
            // Acquire pairs with the owner's release of pending: its operation is visible.
            if cshims_u64_load_acquire(Self.pendingWord(s)) != 0 {
                ops[k] = s.pointee.operation
                ranks[k] = UInt64(rank)
                k &+= 1
            }
        }
        let local = target.replica(r)
        writeLock(r)
        var mine: Range<UInt64> = 0..<0
        if k > 0 {
            let start = append(r, count: k, target: target, mine: &mine)
            mine = start..<(start &+ UInt64(k))
        }
        // The results of our own entries go to their slots as the replay meets them.
        replay(r, local, mine: mine)
        writeUnlock(r)
        if k > 0 { tally.record(thread: thread, operations: UInt64(k)) }
    }

    /// Replays the log into replica r from its local tail to the log's tail (log.rs `exec`),
    /// through `target` (replica r's); an entry in `mine` (replica r's own, being combined now)
    /// answers its slot. Combiner lock of r held, its writer flag set.
    @inline(__always) @usableFromInline
    func replay<T: OperationTarget>(_ r: Int, _ target: T, mine: Range<UInt64>) {
        let from = cshims_u64_load_relaxed(ltail(r))
        let to = cshims_u64_load_acquire(tail)
        if from == to { return }
        // Relaxed atomics: the harness reads it while combiners run (replicationCounts).
        let lag = maxLag(r)
        if to &- from > cshims_u64_load_relaxed(lag) { cshims_u64_store_relaxed(lag, to &- from) }
        var polls = 0
        var i = from
        while i < to {
            let e = entry(i)
            // Acquire pairs with the writer's release of alive: the operation is visible.
            let want = aliveValue(i)
            while cshims_u64_load_acquire(Self.aliveWord(e)) != want {
                // Only a broken head lets the tail pass this entry's next lap before it is replayed.
                if fault == .earlyReuse && cshims_u64_load_acquire(tail) > i &+ size { break }
                DelegationWait.pause(&polls, yields: yields)
            }
            let skipped = fault == .skipEntry && r == 1 && i % 97 == 96
            let result = skipped ? 0 : target.apply(e.pointee.operation)
            if mine.contains(i) {
                let s = slot(r, Int(batchRanks(r)[Int(i &- mine.lowerBound)]))
                s.pointee.result = result
                // Release: the result before pending == 0 (the owner's acquire).
                cshims_u64_store_release(Self.pendingWord(s), 0)
            }
            i &+= 1
        }
        // Release: the entries' loads and the replica's writes come before another thread's
        // reuse of these slots (advanceHead's acquire) and a reader's wait for this tail.
        cshims_u64_store_release(ltail(r), to)
        var c = cshims_u64_load_relaxed(ctail)
        while c < to && !cshims_u64_cas_relaxed(ctail, &c, to) {}
    }

    /// Reserves `count` entries for replica r's batch and writes them (log.rs `append`); while the
    /// log is full, replays r and advances the head (which may replay a lagging replica). Returns
    /// the first reserved index; `mine` is set to the batch's range as soon as it is reserved, so
    /// a replay inside advanceHead answers it.
    @inline(__always) @usableFromInline
    func append<T: OperationTarget>(_ r: Int, count: Int, target: T, mine: inout Range<UInt64>) -> UInt64 {
        let n = UInt64(count)
        let ops = batch(r)
        while true {
            let t = cshims_u64_load_relaxed(tail)
            // Acquire pairs with advanceHead's release: every replica's reads of the entries below
            // head happen before our writes reuse their slots.
            let h = cshims_u64_load_acquire(head)
            if t > h &+ size &- gc {
                replay(r, target.replica(r), mine: 0..<0)
                advanceHead(r, target, mine: 0..<0)
                continue
            }
            var expected = t
            if !cshims_u64_cas_acquire(tail, &expected, t &+ n) { continue }
            for j in 0..<n {
                let e = entry(t &+ j)
                e.pointee.operation = ops[Int(j)]
                e.pointee.replica = UInt64(r)
                // Release: the entry's words before its alive value (replay's acquire).
                cshims_u64_store_release(Self.aliveWord(e), aliveValue(t &+ j))
            }
            mine = t..<(t &+ n)
            if t &+ n > h &+ size &- gc { advanceHead(r, target, mine: mine) }
            return t
        }
    }

    /// Moves the head to the least local tail, until there is room for a full batch (log.rs
    /// `advance_head`). While the least local tail is the head, its replica must replay: replica r
    /// replays itself; another is replayed here if its combiner lock is free (nr/mod.rs's Sync).
    @inline(never) @usableFromInline
    func advanceHead<T: OperationTarget>(_ r: Int, _ target: T, mine: Range<UInt64>) {
        var polls = 0
        while true {
            let h = cshims_u64_load_relaxed(head)
            let f = cshims_u64_load_relaxed(tail)
            var least = UInt64.max
            var most: UInt64 = 0
            var laggard = r
            for q in 0..<replicaCount {
                // Acquire pairs with replay's release of the local tail.
                let lt = cshims_u64_load_acquire(ltail(q))
                if lt < least { least = lt; laggard = q }
                most = max(most, lt)
            }
            if fault == .earlyReuse { least = most; laggard = r }
            if least == h {
                if laggard == r {
                    replay(r, target.replica(r), mine: mine)
                } else {
                    sync(laggard, target)
                    DelegationWait.pause(&polls, yields: yields)
                }
                continue
            }
            // Release: the local tails' acquire loads come before an appender's acquire of head.
            // Two combiners may store in either order: a head that goes back is only more cautious.
            cshims_u64_store_release(head, least)
            if f < least &+ size &- gc { return }
            replay(r, target.replica(r), mine: mine)
        }
    }

    /// Replays replica q for another node, if q's combiner lock is free (nr/replica.rs `sync`,
    /// `try_exec`). Holding q's lock means q has no batch of its own in flight.
    @inline(never) @usableFromInline
    func sync<T: OperationTarget>(_ q: Int, _ target: T) {
        let lock = combinerLock(q)
        guard cshims_u32_load_relaxed(lock) == 0, cshims_u32_exchange_acquire(lock, 1) == 0 else { return }
        writeLock(q)
        replay(q, target.replica(q), mine: 0..<0)
        writeUnlock(q)
        cshims_u32_store_release(lock, 0)
    }

    /// Every replica replays up to the log's tail (no thread is running).
    public func catchUp<T: OperationTarget>(through target: T) {
        for r in 0..<replicaCount { sync(r, target) }
    }

    // --- what the harness reads ------------------------------------------------------------------

    public func combiningCounts() -> CombiningCounts? { tally.totals() }

    public func replicationCounts() -> ReplicationCounts? {
        var lag: UInt64 = 0
        for r in 0..<replicaCount { lag = max(lag, cshims_u64_load_relaxed(maxLag(r))) }
        return ReplicationCounts(appended: cshims_u64_load_relaxed(tail), maxLag: lag, logBytes: logBytes,
                                 executorBytes: replicaCount * replicaBlockBytes)
    }

    public func deallocate() {
        for r in 0..<replicaCount { memory.deallocate(blocks[r], bytes: replicaBlockBytes) }
        blocks.deallocate()
        memory.deallocate(shared, bytes: logBytes)
        tally.deallocate(memory)
    }
}
