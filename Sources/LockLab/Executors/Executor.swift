// Executors: what runs an operation on a shared structure with mutual exclusion and returns its
// result. A lock does it in place (LockExecutor: acquire, apply, release); a delegation executor
// (flat combining, CC-Synch, H-Synch, ffwd, RCL: the delegation family of lock research) publishes the
// operation in a request line and gets the result back from whichever thread applies it, a
// combiner or a server (helper) thread.
//
// The harness is generic over the executor and the workload, so each pair compiles into one
// specialised loop: `op = next(); result = execute(op); completed(op, result); outside()`.
//
// The contract:
//  - `execute(op, on: target, &context)` returns `target.apply(op)`'s result, and no two `apply`
//    calls on one structure overlap. The target a thread passes is its own: a combiner or server
//    applying another thread's operation applies it through the target *it* holds, so the
//    harness's handover locality counts the thread that ran the operation (that is what moves
//    the data's cache lines).
//  - Helper threads: an executor whose descriptor asks for `helperThreads` gets that many extra
//    threads, each on a CPU the plan reserved, started by the run's ThreadGroup with the clients.
//    Each runs `serve(helper:target:control:)` until the group's phase is `GroupPhase.stop`,
//    publishing progress on `control.progress(helper.index)` so that a hung server is a hung run.
//  - A client thread frees its context when it has applied its last operation; a helper keeps
//    serving after `stop` until every client has (a client must never wait on a server that left).
//  - `combiningCounts` (delegation only): passes and operations applied, for `combining_degree`.
//  - `tryExecute` is optional (descriptor.supportsTryLock): apply only if exclusion is free now.
//  - Reads (the read/update split): an executor whose `readSharing` is not `.exclusive` gets every
//    operation the workload marks read-only (`SequentialStructure.isReadOnly`) through
//    `executeRead`, the rest through `execute`. `.shared`: a read may run beside other reads, never
//    beside an update (reader-writer locks, node replication). `.optimistic`: a read may run beside
//    an update and the executor makes its result come from one consistent state (a seqlock
//    retries, RCU reads an old version); it is paired only with structures whose read path says
//    it tolerates that (`SequentialStructure.readsTolerateConcurrentUpdates`). An exclusive
//    executor never sees `executeRead`: every operation excludes every other, as before.
//    The read path's target writes nothing shared (no counter, no handover record: the harness
//    checks reads with two loads of the record's version word), so the measurement does not
//    turn reads into writes; the update path's target bumps the version word around the update.

/// What an executor is told when it is made.
public struct ExecutorEnvironment: Sendable {
    /// Client threads that will hold a context (helper threads not included).
    public let clientThreads: Int
    /// NUMA nodes of the run (virtual nodes count); thread node ids are 0..<nodeCount.
    public let nodeCount: Int
    /// Where the executor's shared memory goes.
    public let memory: LabMemory
    /// The executor's options, every key resolved.
    public let options: LockOptions
    /// True when a thread of the run (clients and helpers together) may have to share its CPU:
    /// more threads than CPUs, or threads unpinned. Delegation waiters yield only then (see
    /// Delegation.swift); by default true, the safe choice for a caller that does not know.
    public let threadsShareCPUs: Bool

    public init(clientThreads: Int, nodeCount: Int, memory: LabMemory = .init(), options: LockOptions,
                threadsShareCPUs: Bool = true) {
        self.clientThreads = clientThreads
        self.nodeCount = max(1, nodeCount)
        self.memory = memory
        self.options = options
        self.threadsShareCPUs = threadsShareCPUs
    }

    /// Whether the threads of `slots` (clients and helpers) share CPUs: one is unpinned, or two
    /// are pinned to one CPU (the plan's `oversubscribed`, counted over every thread).
    public static func threadsShareCPUs(_ slots: [ThreadSlot]) -> Bool {
        if slots.contains(where: { $0.cpu == nil }) { return true }
        return Set(slots.compactMap(\.cpu)).count < slots.count
    }
}

/// The thread-side face of a shared structure, as the harness hands it to an executor: apply an
/// operation, under the exclusion the executor provides, and get its result.
public protocol OperationTarget {
    /// Applies `op`; the caller guarantees no other `apply` on the same structure overlaps.
    func apply(_ op: Operation) -> UInt64

    /// The same thread's target on replica `replica` of the structure, `0..<E.replicas(nodeCount:)`:
    /// what node replication applies its log through, one replica per node. A target over one
    /// structure (every executor's but a replicated one's) is its own replica 0.
    func replica(_ replica: Int) -> Self

    /// What an update goes through when this target is a read's: a replicated executor's read
    /// path replays the log into a lagging replica before it reads (node replication's readers
    /// take the combiner role, nr/replica.rs `execute`), and that replay is made of updates. An
    /// update's target is its own.
    associatedtype Updates: OperationTarget = Self
    var updates: Updates { get }
}

extension OperationTarget {
    @inline(__always)
    public func replica(_ replica: Int) -> Self { self }
}

extension OperationTarget where Updates == Self {
    @inline(__always)
    public var updates: Self { self }
}

/// How an executor treats the operations a workload marks read-only (see the contract above).
public enum ReadSharing: String, Sendable, CaseIterable {
    /// Every operation excludes every other: locks and delegation executors.
    case exclusive
    /// Reads run beside reads, never beside an update: reader-writer locks, node replication.
    case shared
    /// Reads may run beside an update and still return a result of one consistent state
    /// (seqlock: retried; RCU: an old version).
    case optimistic

    /// Why executor `lock` (reads `sharing`) cannot run workload `workload`, whose structure is
    /// `structure`: an optimistic executor's reads run beside updates, which only a structure
    /// whose reads tolerate that may see (`SequentialStructure.readsTolerateConcurrentUpdates`).
    /// nil when the pairing is sound. The one message the plan and the harness both give.
    public static func pairingRefusal(_ sharing: ReadSharing, lock: String, workload: String,
                                      structure: any SequentialStructure.Type) -> String? {
        guard sharing == .optimistic, !structure.readsTolerateConcurrentUpdates else { return nil }
        return "\(lock) runs reads beside updates and retries them, which only a workload whose reads tolerate that may see (bounded, atomic loads, nothing freed: snapshot); \(workload)'s reads do not"
    }
}

/// Runs operations with mutual exclusion. Conformers are structs of pointers (no ARC) in this
/// module, with `@inline(__always)` on `execute`.
public protocol Executor {
    /// Per-thread state: a lock's queue node, a delegation client's request line.
    associatedtype Context

    /// Name, family, options, thread limits and helper threads (`locklab list`).
    static var descriptor: LockDescriptor { get }

    /// Allocates the executor. Throws `LockError` for options it cannot honour.
    init(_ environment: ExecutorEnvironment) throws

    /// Made once on each client thread, after pinning, before the start barrier.
    func makeContext(for thread: ThreadSlot) -> Context
    /// Once on each client thread when it is done.
    func freeContext(_ context: inout Context)

    /// Applies `op` through `target` with mutual exclusion and returns its result.
    func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64
    /// Reads: `.exclusive` (the default) sends every operation through `execute`; otherwise the
    /// harness sends read-only operations through `executeRead`. A static constant, so each
    /// specialised loop keeps only its own path.
    static var readSharing: ReadSharing { get }
    /// Applies the read-only `op` through `target` (never beside an update for `.shared`) and
    /// returns its result. Only called when `readSharing != .exclusive`.
    func executeRead<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64

    /// Applies `op` only if exclusion can be had at once; nil if not. Only called when
    /// `descriptor.supportsTryLock`.
    func tryExecute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64?

    /// A helper thread's life (`descriptor.helperThreads > 0`): `control.arriveAndWait()` (return
    /// at once if it gives `GroupPhase.abort`), then serve requests through `target` until
    /// `control.currentPhase() == GroupPhase.stop`, publishing progress on
    /// `control.progress(helper.index)`.
    func serve<T: OperationTarget>(helper: ThreadSlot, target: T, control: GroupControl)

    /// Combining passes (server sweeps) and the operations they applied so far, all threads
    /// together; nil for an executor that does not combine (a lock). Read by the harness, on its
    /// own thread, at the start and the end of the measured phase: `combining_degree`.
    func combiningCounts() -> CombiningCounts?

    /// On each client thread when the measured phase begins (after warm-up): per-thread figures
    /// the executor keeps itself (an RCU thread's grace periods) count from here.
    func measurementStarts(_ context: inout Context)
    /// Grace periods and memory awaiting reclamation (RCU executors); nil for the others. Read
    /// by the harness after every thread has left.
    func reclamation() -> ReclamationSummary?

    /// Replicas of the structure the executor applies operations to on a run of `nodeCount` nodes:
    /// 1 for every executor but a replicated one (node replication: one per node). The harness
    /// builds the workload that many times (same seed, so the same initial state), each on its
    /// node's memory, and checks every replica (its counter, its log, its final contents) after
    /// the run; `OperationTarget.replica(_:)` reaches replica r.
    static func replicas(nodeCount: Int) -> Int

    /// The replicated executor's log and replicas (node replication), read by the harness at the
    /// start and the end of the measured phase; nil for the others.
    func replicationCounts() -> ReplicationCounts?

    /// After every thread has left, before the harness checks the structure: bring every replica
    /// up to date through `target` (replica r through `target.replica(r)`), as the crate's
    /// `Replica::verify` replays the log before it looks. A replica whose node's threads stopped
    /// early is legitimately behind until then. Nothing to do for an executor of one structure.
    func catchUp<T: OperationTarget>(through target: T)

    /// Frees the executor's memory once every thread has left.
    func deallocate()
}

/// What a replicated executor reports about its log (node replication).
public struct ReplicationCounts: Sendable, Equatable {
    /// Log entries appended so far (the log's tail: every update is one entry).
    public var appended: UInt64
    /// The most entries a replica was behind the log's tail when it began a replay, whole run.
    public var maxLag: UInt64
    /// Bytes of the shared log (entries and tails), and of the executor's per-replica state
    /// (combiner and reader-writer lock words, thread slots, batch buffers).
    public var logBytes: Int
    public var executorBytes: Int
    public init(appended: UInt64, maxLag: UInt64, logBytes: Int, executorBytes: Int) {
        self.appended = appended
        self.maxLag = maxLag
        self.logBytes = logBytes
        self.executorBytes = executorBytes
    }
}

extension Executor {
    public func freeContext(_ context: inout Context) {}

    @inline(__always)
    public static var readSharing: ReadSharing { .exclusive }

    @inline(__always)
    public func executeRead<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        execute(op, on: target, &context)
    }

    public func combiningCounts() -> CombiningCounts? { nil }

    public func measurementStarts(_ context: inout Context) {}

    public func reclamation() -> ReclamationSummary? { nil }

    @inline(__always)
    public static func replicas(nodeCount: Int) -> Int { 1 }

    public func replicationCounts() -> ReplicationCounts? { nil }

    public func catchUp<T: OperationTarget>(through target: T) {}

    public func tryExecute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64? {
        fatalError("\(Self.descriptor.name) does not offer tryExecute")
    }

    public func serve<T: OperationTarget>(helper: ThreadSlot, target: T, control: GroupControl) {
        fatalError("\(Self.descriptor.name) asks for no helper threads")
    }
}
