// The generic runner: T client threads (and an executor's helper threads) in one ThreadGroup, one
// executor, one workload, one specialised loop.
//
// Phases (the group's phase word): 0 wait at the start barrier, 1 warm-up, 2 measure, 3 stop.
// Threads read the phase with a relaxed load once per iteration. Each thread counts its own
// operations in registers and publishes progress every 256 operations for the watchdog.
//
// Per iteration, in order: op = next operation; [sampled: read the cycle counter] result =
// execute(op) [sampled: the target stamps the cycle counter when the operation starts being
// applied; the acquire latency is the difference]; completed(op, result); the workload's outside
// section. Inside `execute`, the applying thread's target bumps the harness record's plain counter
// (in the workload's first shared line), notes a handover when the previous applier was another
// thread, and applies the operation to the structure.
//
// Latency sampling: each thread times every operation of the measured phase until it holds
// `Harness.minLatencySamples` samples, then every Kth (`sampleEvery`), so a slow run (a few hundred
// acquisitions, oversubscribed spin locks) still gets latency percentiles while a fast one is
// timed at 1 in K. The choice is made in the out-of-line timed iteration; the common one only
// counts down.
//
// Reads (the read/update split, Executor.swift): for an executor whose `readSharing` is not
// `.exclusive`, an operation the structure marks read-only goes through `executeRead` with a
// `ReadTarget`, which writes nothing shared: it loads the record's version word before and after
// the read (Boehm's seqlock reader, MSPC 2012) into the thread's own words. Updates go through
// `execute` with a `VersionedTarget`, which makes the version odd around the update. A read that
// saw the version odd or changed overlapped an update: a mutual-exclusion failure for `.shared`,
// expected (and counted) for `.optimistic`. The plain counter then counts updates only. For an
// exclusive executor nothing changes: every operation is applied through `MeasuredTarget`; the
// loop only counts which operations were reads (one compare, for the read/update columns).
//
// Nothing in the loop allocates, retains or calls through an existential: `measure` is generic
// over the executor and the workload, and is entered through the catalog, which is built with
// concrete types.

import CShims
import Foundation
import Histogram

/// How long a run lasts.
public enum RunLength: Sendable, Equatable {
    /// Warm up, then measure for a wall-clock time.
    case timed(warmupSeconds: Double, measureSeconds: Double)
    /// Every thread does exactly this many acquisitions (the validator's mode).
    case iterations(perThread: Int)
}

public struct RunConfig: Sendable {
    public var spec: LockSpec
    /// The client threads.
    public var threads: [ThreadSlot]
    /// The executor's helper threads, on CPUs the plan reserved (indices after the clients').
    public var helpers: [ThreadSlot]
    /// NUMA nodes of the run; thread node ids are below this.
    public var nodeCount: Int
    public var length: RunLength
    /// Time every Kth acquisition of each thread (0: none).
    public var sampleEvery: Int
    /// Make every Kth acquisition a trylock spin (0: never; ignored if the lock has no trylock).
    public var trylockEvery: Int
    /// Where the lock and the shared data go.
    public var memory: LabMemory
    /// Where replica r of a replicated executor's structure goes (node replication), by node of
    /// the run; empty: every replica in `memory` (one real node, or an unknown layout).
    public var nodeMemory: [LabMemory] = []

    /// The memory of node `node`'s replica.
    public func replicaMemory(_ node: Int) -> LabMemory { node < nodeMemory.count ? nodeMemory[node] : memory }
    public var seed: UInt64
    /// A run whose threads make no progress for this long is declared hung.
    public var stallTimeoutSeconds: Double
    /// Record every applied operation and its result, in application order, for the workload's
    /// model check (the validator; `.iterations` runs only).
    public var logOperations: Bool

    public init(spec: LockSpec, threads: [ThreadSlot], nodeCount: Int = 1,
                length: RunLength = .timed(warmupSeconds: 0.2, measureSeconds: 1),
                sampleEvery: Int = Harness.defaultSampleEvery, trylockEvery: Int = 0,
                memory: LabMemory = LabMemory(), seed: UInt64 = 1, stallTimeoutSeconds: Double = 30,
                helpers: [ThreadSlot] = [], logOperations: Bool = false) {
        self.spec = spec
        self.threads = threads
        self.helpers = helpers
        self.logOperations = logOperations
        self.nodeCount = nodeCount
        self.length = length
        self.sampleEvery = sampleEvery
        self.trylockEvery = trylockEvery
        self.memory = memory
        self.seed = seed
        self.stallTimeoutSeconds = stallTimeoutSeconds
    }
}

/// One applying thread's own words (its own 128-byte block, written only by that thread): the
/// handovers it saw and when its timed operation started being applied.
@usableFromInline
struct ApplierWords {
    /// Operations applied (measured phase) where the previous applier was another thread.
    @usableFromInline var handovers: UInt64
    /// ... and that thread was on this thread's node.
    @usableFromInline var sameNode: UInt64
    /// Cycle counter when the sampled operation started being applied (0: not applied by us).
    @usableFromInline var appliedAt: UInt64
    /// The record's version word before and after this thread's last read (reader-sharing
    /// executors): the validator's window of states the read may have seen.
    @usableFromInline var readVersionBefore: UInt64
    @usableFromInline var readVersionAfter: UInt64
    /// Reads (whole run) whose two version loads saw an update running or completed between them.
    @usableFromInline var readOverlaps: UInt64
}

/// A target whose applications are this thread's, with its own words (the timed wrapper's stamp).
@usableFromInline
protocol AppliedTarget: OperationTarget {
    var words: UnsafeMutablePointer<ApplierWords> { get }
}

extension HarnessRecord {
    /// The record's version word, for the shim's atomics.
    @inline(__always) @usableFromInline
    static func versionWord(_ record: UnsafeMutablePointer<HarnessRecord>) -> UnsafeMutablePointer<UInt64> {
        (UnsafeMutableRawPointer(record) + MemoryLayout<HarnessRecord>.offset(of: \HarnessRecord.version)!)
            .assumingMemoryBound(to: UInt64.self)
    }
}

/// One replica of the workload's structure as the harness keeps it: the structure, its harness
/// record (its own counter and version word: every replica applies every update once) and its own
/// validator log. A run of any executor but a replicated one has one, the workload itself.
@usableFromInline @frozen
struct ReplicaEntry<S: SequentialStructure> {
    @usableFromInline let structure: S
    @usableFromInline let record: UnsafeMutablePointer<HarnessRecord>
    @usableFromInline let log: UnsafeMutablePointer<AppliedOperation>?
}

/// The target a thread hands its executor: the workload's structure, applied as this thread,
/// with the harness's part of every critical section around it.
@usableFromInline @frozen
struct MeasuredTarget<S: SequentialStructure>: AppliedTarget {
    @usableFromInline let structure: S
    @usableFromInline let record: UnsafeMutablePointer<HarnessRecord>
    @usableFromInline let me: UInt64
    @usableFromInline let myNode: UInt64
    @usableFromInline let words: UnsafeMutablePointer<ApplierWords>
    /// The validator's log (nil in measured runs) and its capacity.
    @usableFromInline let log: UnsafeMutablePointer<AppliedOperation>?
    @usableFromInline let logCapacity: UInt64
    /// Every replica of the structure (one, the workload's, unless the executor replicates).
    @usableFromInline let replicas: UnsafePointer<ReplicaEntry<S>>

    /// This thread's target on replica `r`: its structure, record and log.
    @inline(__always) @usableFromInline
    func replica(_ r: Int) -> MeasuredTarget<S> {
        let e = replicas[r]
        return MeasuredTarget(structure: e.structure, record: e.record, me: me, myNode: myNode, words: words,
                              log: e.log, logCapacity: logCapacity, replicas: replicas)
    }

    @inline(__always) @usableFromInline
    func apply(_ op: Operation) -> UInt64 {
        // Plain, non-atomic: any overlap of two applications loses an increment.
        let n = record.pointee.counter
        record.pointee.counter = n &+ 1
        if record.pointee.lastApplier != me { noteHandover() }
        let result = structure.apply(op)
        // logCapacity is 0 when nothing is logged: one compare, no pointer test.
        if n < logCapacity { log.unsafelyUnwrapped[Int(n)] = AppliedOperation(operation: op, result: result) }
        return result
    }

    /// The operation's lines came from another thread.
    @inline(__always) @usableFromInline
    func noteHandover() {
        if record.pointee.lastApplier != 0 {
            words.pointee.handovers &+= 1
            if record.pointee.lastNode == myNode { words.pointee.sameNode &+= 1 }
        }
        record.pointee.lastApplier = me
        record.pointee.lastNode = myNode
    }
}

/// An update's target under a reader-sharing executor: the version word is odd while the update
/// runs and advances by two per update (Boehm's seqlock writer). Updates exclude each other, so
/// the relaxed load reads the last update's store.
@usableFromInline @frozen
struct VersionedTarget<S: SequentialStructure>: AppliedTarget {
    @usableFromInline let inner: MeasuredTarget<S>
    @usableFromInline let version: UnsafeMutablePointer<UInt64>
    @usableFromInline var words: UnsafeMutablePointer<ApplierWords> { inner.words }

    @inline(__always) @usableFromInline
    func replica(_ r: Int) -> VersionedTarget<S> {
        let i = inner.replica(r)
        return VersionedTarget(inner: i, version: HarnessRecord.versionWord(i.record))
    }

    @inline(__always) @usableFromInline
    func apply(_ op: Operation) -> UInt64 {
        let v = cshims_u64_load_relaxed(version)
        cshims_u64_store_relaxed(version, v &+ 1)
        // The odd version is visible before any store of the update: a reader whose loads see
        // one of them sees (after its acquire fence) the odd version or a later one.
        cshims_fence_release()
        let result = inner.apply(op)
        // Every store of the update before the even version.
        cshims_u64_store_release(version, v &+ 2)
        return result
    }
}

/// A read's target under a reader-sharing executor: applies the read-only operation and brackets
/// it with two loads of the version word (Boehm's seqlock reader). Writes only the thread's own
/// words, so reads stay reads: no shared line is dirtied by measuring them.
@usableFromInline @frozen
struct ReadTarget<S: SequentialStructure>: AppliedTarget {
    @usableFromInline let structure: S
    @usableFromInline let version: UnsafeMutablePointer<UInt64>
    @usableFromInline let words: UnsafeMutablePointer<ApplierWords>
    /// The thread's update target on the same replica (what a replicated executor's read replays
    /// the log through when its replica lags).
    @usableFromInline let updates: VersionedTarget<S>

    @inline(__always) @usableFromInline
    func replica(_ r: Int) -> ReadTarget<S> {
        let u = updates.replica(r)
        return ReadTarget(structure: u.inner.structure, version: u.version, words: words, updates: u)
    }

    @inline(__always) @usableFromInline
    func apply(_ op: Operation) -> UInt64 {
        // Acquire: the read's loads come after it.
        let before = cshims_u64_load_acquire(version)
        let result = structure.apply(op)
        // The read's loads come before the second version load.
        cshims_fence_acquire()
        let after = cshims_u64_load_relaxed(version)
        words.pointee.readVersionBefore = before
        words.pointee.readVersionAfter = after
        if (before & 1) | (before ^ after) != 0 { words.pointee.readOverlaps &+= 1 }
        return result
    }
}

/// The target of a sampled iteration: stamps the cycle counter when the operation starts being
/// applied (the end of the acquire, for a lock), then applies it.
@usableFromInline @frozen
struct TimedTarget<T: AppliedTarget>: OperationTarget {
    @usableFromInline let inner: T
    /// A replay before a read is not the read: untimed.
    @usableFromInline var updates: T.Updates { inner.updates }

    @inline(__always) @usableFromInline
    func replica(_ r: Int) -> TimedTarget<T> { TimedTarget(inner: inner.replica(r)) }
    @inline(__always) @usableFromInline
    func apply(_ op: Operation) -> UInt64 {
        // The first application only: a combiner applies its own operation first, then others'
        // through the same target.
        if inner.words.pointee.appliedAt == 0 { inner.words.pointee.appliedAt = cshims_cycles() }
        return inner.apply(op)
    }
}

/// The target of the injected hang: holds the exclusion forever.
struct HangingTarget: OperationTarget {
    func apply(_ op: Operation) -> UInt64 {
        while true { sleep(3600) }
    }
}

/// What one thread measured.
public struct ThreadOutcome {
    public var thread: ThreadSlot
    /// Operations in the measured phase.
    public var measuredOps: UInt64
    /// Operations over the whole run (warm-up included): what the counter check adds up.
    public var totalOps: UInt64
    /// Operations this thread applied (measured phase) where the previous applier was another thread.
    public var handoversIn: UInt64
    /// ... and that thread was on this thread's node.
    public var sameNodeHandoversIn: UInt64
    /// Read-only operations (the structure's `isReadOnly`) among `measuredOps` and `totalOps`.
    public var measuredReads: UInt64
    public var totalReads: UInt64
    /// Reads (whole run) that overlapped an update (reader-sharing executors; 0 otherwise): a
    /// mutual-exclusion failure for `.shared`, the retried or old-version reads for `.optimistic`.
    public var readOverlaps: UInt64
    /// Sampled acquire latencies, in cycles (measured phase), every operation.
    public var latencyCycles: Histogram<UInt64>
    /// ... of the reads and of the updates alone (both merge into `latencyCycles`).
    public var readLatencyCycles: Histogram<UInt64>
    public var updateLatencyCycles: Histogram<UInt64>
    /// CPU time and context switches of the measured phase.
    public var userNanoseconds: UInt64
    public var systemNanoseconds: UInt64
    public var voluntarySwitches: UInt64
    public var involuntarySwitches: UInt64
    /// The CPU the thread was on when it finished (checks pinning).
    public var lastCPU: Int
}

public enum Harness {
    /// Default latency sampling: every 64th acquisition of each thread.
    public static let defaultSampleEvery = 64
    /// Each thread times every operation of the measured phase until it has this many samples,
    /// then every `sampleEvery`th: slow runs still get latency (see `RunMatrix.samplingNote`).
    public static let minLatencySamples = 32
    /// Threads publish their op count for the watchdog this often (a power of two).
    @usableFromInline static let progressMask: UInt64 = 255
    /// Largest latency the histograms track, in cycles (about a minute at 5 GHz).
    static let histogramMaxCycles: UInt64 = 300_000_000_000

    /// Fault injection for the watchdog's tests: `LOCKLAB_FAULT_HANG=<lock name>` in the environment
    /// makes every run (and torture) of that lock hang: its thread 0 takes the lock before its first
    /// iteration and never lets go. So a real sweep process can be shown to record the run as hung
    /// and go on, and `torture` to fail. Read once per process; unset (the default), nothing
    /// changes. The check happens once per thread, before the measured loop.
    public static let faultHangLock: String? = {
        guard let name = ProcessInfo.processInfo.environment["LOCKLAB_FAULT_HANG"], !name.isEmpty else { return nil }
        return name
    }()

    /// Measures lock `L` (through `LockExecutor<L>`) with workload `W`; see `measure(executor:)`.
    public static func measure<L: LockAlgorithm, W: Workload>(
        _ lockType: L.Type, workload: W, config: RunConfig
    ) throws -> RawRunResult {
        try measure(executor: LockExecutor<L>.self, workload: workload, config: config)
    }

    /// Measures one configuration of executor `E` with workload `W` and returns what every thread
    /// measured. `W` is consumed: its memory is freed when the run ends (unless the run hung).
    /// A thread that cannot be created or pinned ends the run as `failed`, with the reason.
    /// `make` builds the executor (by default `E.init`; an RCU executor is built over its
    /// structure's domain). `replicas`: the workload built again, once per further replica a
    /// replicated executor asks for (`E.replicas(nodeCount:)` - 1; same seed, each on its node's
    /// memory); consumed like `workload`.
    ///
    /// Only the threads' bodies (`clientBody`, `helperBody`: the measured loop) are specialised
    /// for each (executor, workload) pair, here, at the caller's concrete types; the run around
    /// them (`controller`) is compiled once, generic, since it runs once per run. Specialising it
    /// too made it the largest code in the binary (about 3 MB for ~600 pairs) and a good part of
    /// the release build's time, for nothing measurable.
    @inline(__always)
    public static func measure<E: Executor, W: Workload>(
        executor executorType: E.Type, workload: W, config: RunConfig, replicas extra: [W] = [],
        make: (ExecutorEnvironment) throws -> E = { try E($0) }
    ) throws -> RawRunResult {
        try controller(executor: executorType, workload: workload, config: config, replicas: extra, make: make,
                       client: { executor, workload, replicas, slot, loop, control, out in
                           clientBody(executor: executor, workload: workload, replicas: replicas, slot: slot,
                                      loop: loop, control: control, out: out)
                       },
                       helper: { executor, workload, replicas, slot, loop, control, tid in
                           helperBody(executor: executor, workload: workload, replicas: replicas, slot: slot,
                                      loop: loop, control: control, tid: tid)
                       })
    }

    /// A client thread's body, specialised where `measure` is (see there).
    typealias ClientBody<E: Executor, W: Workload> = (E, W, UnsafePointer<ReplicaEntry<W.Structure>>, ThreadSlot,
                                                      LoopParameters, GroupControl, UnsafeMutablePointer<ThreadOutcome>) -> Void
    /// A helper thread's body, specialised where `measure` is.
    typealias HelperBody<E: Executor, W: Workload> = (E, W, UnsafePointer<ReplicaEntry<W.Structure>>, ThreadSlot,
                                                      LoopParameters, GroupControl, UnsafeMutablePointer<UInt64>) -> Void

    /// The run around the threads' bodies: build, start, time, stop, check, free. Never
    /// specialised (the semantics attribute is the standard library's own for cold generic code);
    /// the bodies it starts are, by `measure`.
    @inline(never) @_semantics("optimize.sil.specialize.generic.never")
    static func controller<E: Executor, W: Workload>(
        executor executorType: E.Type, workload: W, config: RunConfig, replicas extra: [W],
        make: (ExecutorEnvironment) throws -> E,
        client clientBody: @escaping ClientBody<E, W>, helper helperBody: @escaping HelperBody<E, W>
    ) throws -> RawRunResult {
        let clientCount = config.threads.count
        precondition(clientCount > 0)
        precondition(config.helpers.count == E.descriptor.helperThreads, "the plan must reserve the executor's helper CPUs")
        let replicaCount = max(1, E.replicas(nodeCount: config.nodeCount))
        precondition(extra.count == replicaCount - 1, "the catalog must build one workload per replica")
        func freeWorkloads() {
            workload.deallocate()
            for w in extra { w.deallocate() }
        }
        if let maxThreads = E.descriptor.maxThreads, clientCount > maxThreads {
            freeWorkloads()
            throw LockError.tooManyThreads(lock: E.descriptor.name, threads: clientCount, max: maxThreads)
        }
        let executor: E
        do {
            executor = try make(ExecutorEnvironment(clientThreads: clientCount, nodeCount: config.nodeCount,
                                                 memory: config.memory, options: config.spec.options,
                                                 threadsShareCPUs: ExecutorEnvironment.threadsShareCPUs(config.threads + config.helpers)))
        } catch {
            freeWorkloads()
            throw error
        }
        let group = ThreadGroup(slots: config.threads + config.helpers)
        let outcomes = UnsafeMutablePointer<ThreadOutcome>.allocate(capacity: clientCount)
        // Each helper's kernel thread id, published before it arrives at the start barrier: the
        // run reads the helpers' CPU clocks at the start and the end of the measured phase.
        let helperCount = config.helpers.count
        let helperTids = UnsafeMutablePointer<UInt64>.allocate(capacity: max(1, helperCount))
        helperTids.initialize(repeating: 0, count: max(1, helperCount))
        defer { helperTids.deallocate() }

        let opsLimit: UInt64
        var logCapacity = 0
        switch config.length {
        case .timed: opsLimit = .max
        case let .iterations(n):
            opsLimit = UInt64(max(0, n))
            if config.logOperations { logCapacity = max(0, n) * clientCount }
        }
        // One log per replica (replica r's from r * logCapacity): each replica's applications in
        // its own order, which must be the same for all.
        let log = logCapacity > 0 ? UnsafeMutablePointer<AppliedOperation>.allocate(capacity: logCapacity * replicaCount) : nil
        // A hung run's threads may still write the logs: then they are never freed.
        var abandoned = false
        defer { if !abandoned { log?.deallocate() } }
        let replicaTable = UnsafeMutablePointer<ReplicaEntry<W.Structure>>.allocate(capacity: replicaCount)
        replicaTable.initialize(to: ReplicaEntry(structure: workload.structure, record: workload.record, log: log))
        for (k, w) in extra.enumerated() {
            (replicaTable + k + 1).initialize(to: ReplicaEntry(structure: w.structure, record: w.record,
                                                               log: log.map { $0 + (k + 1) * logCapacity }))
        }
        defer { if !abandoned { replicaTable.deallocate() } }
        // What came back to each client, thread by thread (thread i's from i * opsLimit): checked
        // against what was applied, so a response lost or sent to the wrong client is caught.
        let received = logCapacity > 0 ? UnsafeMutablePointer<AppliedOperation>.allocate(capacity: logCapacity) : nil
        defer { if !abandoned { received?.deallocate() } }
        // A reader-sharing executor's reads, thread by thread (thread i's from i * opsLimit), with
        // the version window each saw: checked against the states the updates went through.
        let sharing = E.readSharing != .exclusive
        let readLog = sharing && logCapacity > 0 ? UnsafeMutablePointer<ObservedRead>.allocate(capacity: logCapacity) : nil
        defer { if !abandoned { readLog?.deallocate() } }
        // Updates completed so far (logged runs of a reader-sharing executor): a read must see
        // every update that completed before it began (a stale replica's read would not).
        let completed = readLog != nil ? UnsafeMutablePointer<UInt64>.allocate(capacity: 16) : nil
        completed?.initialize(repeating: 0, count: 16)
        defer { if !abandoned { completed?.deallocate() } }
        let loop = LoopParameters(
            sampleEvery: UInt64(max(0, config.sampleEvery)),
            minSamples: config.sampleEvery > 0 ? UInt64(minLatencySamples) : 0,
            trylockEvery: E.descriptor.supportsTryLock ? UInt64(max(0, config.trylockEvery)) : 0,
            opsLimit: opsLimit, seed: config.seed,
            histogramMaxCycles: histogramMaxCycles,
            faultHang: faultHangLock == E.descriptor.name,
            log: log, logCapacity: UInt64(logCapacity), received: received, readLog: readLog, completed: completed)

        do {
            try group.start { slot, control in
                if slot.index < clientCount {
                    clientBody(executor, workload, replicaTable, slot, loop, control, outcomes + slot.index)
                } else {
                    helperBody(executor, workload, replicaTable, slot, loop, control, helperTids + (slot.index - clientCount))
                }
            }
            // Start barrier: every thread pinned, context made, waiting.
            try group.waitUntilReady()
        } catch let error as ThreadGroupError {
            // Every started thread has left at the barrier without publishing an outcome.
            outcomes.deallocate()
            executor.deallocate()
            freeWorkloads()
            return RawRunResult(lock: E.descriptor.name, status: .failed, elapsedSeconds: 0, threads: [],
                                counter: 0, progressOps: 0, workloadCheck: .ok, failure: error.description)
        }

        var measureStart: UInt64 = 0
        var measureEnd: UInt64 = 0
        var hung = false
        var countsAtStart = executor.combiningCounts()
        var replicationAtStart = executor.replicationCounts()
        var helperClocks: (start: [cshims_thread_cpu_clocks], end: [cshims_thread_cpu_clocks]) = ([], [])
        var replicationAtEnd: ReplicationCounts? = nil
        switch config.length {
        case let .timed(warmup, measure):
            group.setPhase(GroupPhase.warmup)
            sleepSeconds(warmup)
            group.setPhase(GroupPhase.measure)
            measureStart = CycleClock.monotonicNanoseconds()
            countsAtStart = executor.combiningCounts()
            replicationAtStart = executor.replicationCounts()
            helperClocks.start = Self.helperCPUClocks(helperTids, count: helperCount)
            sleepSeconds(measure)
            // Before the stop: a helper leaves soon after it (its clocks go with its thread).
            helperClocks.end = Self.helperCPUClocks(helperTids, count: helperCount)
            group.setPhase(GroupPhase.stop)
            measureEnd = CycleClock.monotonicNanoseconds()
            replicationAtEnd = executor.replicationCounts()
            hung = !group.waitForFinish(stallTimeoutSeconds: config.stallTimeoutSeconds)
        case .iterations:
            measureStart = CycleClock.monotonicNanoseconds()
            helperClocks.start = Self.helperCPUClocks(helperTids, count: helperCount)
            group.setPhase(GroupPhase.measure)
            // The clients stop by themselves; helper threads serve until told to stop.
            hung = !group.waitForFinish(threads: clientCount, stallTimeoutSeconds: config.stallTimeoutSeconds)
            measureEnd = CycleClock.monotonicNanoseconds()
            replicationAtEnd = executor.replicationCounts()
            helperClocks.end = Self.helperCPUClocks(helperTids, count: helperCount)
            group.setPhase(GroupPhase.stop)
            if !hung { hung = !group.waitForFinish(stallTimeoutSeconds: config.stallTimeoutSeconds) }
        }

        if hung {
            // Threads still spin on memory we own: leave it (and them) alone rather than free it
            // under them. The caller records the run as hung.
            let progress = group.control.totalProgress()
            abandoned = true
            group.abandon()
            return RawRunResult(lock: E.descriptor.name, status: .hung, elapsedSeconds: 0, threads: [],
                                counter: 0, progressOps: progress, workloadCheck: .ok, failure: nil)
        }
        group.join()
        if replicaCount > 1 {
            // The replicas behind the log's tail replay the rest, as the harness's own thread
            // (applier index past every thread's), before anything is checked.
            let words = LabMemory().allocate(bytes: 128).bindMemory(to: ApplierWords.self, capacity: 1)
            let t = MeasuredTarget(structure: workload.structure, record: workload.record,
                                   me: UInt64(clientCount + helperCount + 1), myNode: 0, words: words, log: log,
                                   logCapacity: UInt64(logCapacity), replicas: replicaTable)
            executor.catchUp(through: VersionedTarget(inner: t, version: HarnessRecord.versionWord(workload.record)))
            LabMemory().deallocate(UnsafeMutableRawPointer(words), bytes: 128)
        }

        var threads: [ThreadOutcome] = []
        threads.reserveCapacity(clientCount)
        for i in 0..<clientCount { threads.append((outcomes + i).move()) }
        outcomes.deallocate()
        let counter = workload.record.pointee.counter
        let total = threads.reduce(UInt64(0)) { $0 &+ $1.totalOps }
        let totalReads = threads.reduce(UInt64(0)) { $0 &+ $1.totalReads }
        let overlaps = threads.reduce(UInt64(0)) { $0 &+ $1.readOverlaps }
        // A reader-sharing executor's reads do not touch the counter: it counts the updates.
        let expected = sharing ? total &- totalReads : total
        let logged = log.map { UnsafeBufferPointer(start: $0, count: Int(min(counter, UInt64(logCapacity)))) }
        var check = workload.verify(applied: counter, log: logged)
        // Every further replica applied every update once, in the log's order (its own log), and
        // holds what the model holds.
        for (k, w) in extra.enumerated() where check.passed && counter == expected {
            let applied = w.record.pointee.counter
            if applied != expected {
                check = WorkloadCheck(failure: "replica \(k + 1) applied \(applied) updates, replica 0 \(counter): \(E.descriptor.name) skipped or repeated a log entry on a replica")
                break
            }
            let replicaLog = log.map { UnsafeBufferPointer(start: $0 + (k + 1) * logCapacity, count: Int(min(applied, UInt64(logCapacity)))) }
            let c = w.verify(applied: applied, log: replicaLog)
            if let failure = c.failure { check = WorkloadCheck(failure: "replica \(k + 1): \(failure)") }
        }
        if check.passed, E.readSharing == .shared, overlaps > 0 {
            check = WorkloadCheck(failure: "reads: \(overlaps) of \(totalReads) reads ran beside an update (the record's version word was odd or changed under them): \(E.descriptor.name) let an update in while reads were running")
        }
        var reads: [ObservedRead] = []
        if let readLog, counter == expected {
            for t in threads {
                let first = readLog + t.thread.index * Int(opsLimit)
                reads.append(contentsOf: UnsafeBufferPointer(start: first, count: Int(t.totalReads)))
            }
        }
        if check.passed, let logged, readLog != nil, counter == expected {
            check = Self.readsFailure(workload, updates: logged, reads: reads)
        }
        if check.passed, let logged, let received, counter == expected {
            check = Self.responsesFailure(applied: Array(logged) + reads.map { AppliedOperation(operation: $0.operation, result: $0.result) },
                                          received: UnsafeBufferPointer(start: received, count: logCapacity),
                                          perThread: Int(opsLimit), threads: clientCount)
        }
        let degree = countsAtStart.flatMap { start in executor.combiningCounts()?.degree(since: start) }
        let reclamation = executor.reclamation()
        var replication: ReplicationSummary? = nil
        if let end = replicationAtEnd ?? executor.replicationCounts() {
            let structureBytes = ([workload] + extra).reduce(0) { $0 + $1.sharedMemory().reduce(0) { $0 + $1.count } }
            replication = ReplicationSummary(replicas: replicaCount, appended: end.appended &- (replicationAtStart?.appended ?? 0),
                                             maxLag: end.maxLag, replicaBytes: structureBytes + end.executorBytes,
                                             logBytes: end.logBytes)
        }
        executor.deallocate()
        freeWorkloads()

        let elapsed = Double(measureEnd &- measureStart) / 1e9
        let status: RunStatus = (counter == expected && check.passed) ? .ok : .mutexViolation
        let helperTime = Self.helperCPUTime(from: helperClocks.start, to: helperClocks.end)
        return RawRunResult(lock: E.descriptor.name, status: status, elapsedSeconds: elapsed, threads: threads,
                            counter: counter, progressOps: total, workloadCheck: check, failure: check.failure,
                            combiningDegree: degree, helperUserNanoseconds: helperTime.user,
                            helperSystemNanoseconds: helperTime.system, reclamation: reclamation,
                            replication: replication)
    }

    /// The CPU clocks of the `count` helpers whose thread ids are at `tids` (a helper whose
    /// clocks cannot be read, having left, reads as zeros).
    static func helperCPUClocks(_ tids: UnsafeMutablePointer<UInt64>, count: Int) -> [cshims_thread_cpu_clocks] {
        (0..<count).map { k in
            var clocks = cshims_thread_cpu_clocks()
            // Acquire pairs with the helper's release of its tid (published before the barrier).
            let tid = cshims_u64_load_acquire(tids + k)
            if tid == 0 || cshims_thread_cpu_clocks_now(Int32(tid), &clocks) != 0 { clocks = cshims_thread_cpu_clocks() }
            return clocks
        }
    }

    /// The helpers' CPU time between two readings, user and system: the scheduler's exact run
    /// time, split in the ratio of the tick-sampled user and user + system times (all user when
    /// no tick fell in the window). getrusage(RUSAGE_THREAD), which the clients use, reads only
    /// the calling thread, and a helper's thread is inside the executor's serve loop.
    static func helperCPUTime(from start: [cshims_thread_cpu_clocks], to end: [cshims_thread_cpu_clocks])
        -> (user: UInt64, system: UInt64) {
        var user: UInt64 = 0
        var system: UInt64 = 0
        for (a, b) in zip(start, end) where b.sched_ns >= a.sched_ns && a.sched_ns > 0 {
            let run = b.sched_ns - a.sched_ns
            let prof = b.prof_ns &- a.prof_ns
            let ticksUser = min(prof, b.user_ns &- a.user_ns)
            let share = prof > 0 && b.prof_ns >= a.prof_ns ? Double(ticksUser) / Double(prof) : 1
            let u = UInt64(Double(run) * share)
            user += u
            system += run - min(run, u)
        }
        return (user, system)
    }

    static func sleepSeconds(_ s: Double) {
        guard s > 0 else { return }
        var ts = timespec(tv_sec: Int(s), tv_nsec: Int((s - Double(Int(s))) * 1e9))
        var rem = timespec()
        while nanosleep(&ts, &rem) != 0 && errno == EINTR { ts = rem }
    }
}

@usableFromInline
struct LoopParameters: @unchecked Sendable {
    @usableFromInline let sampleEvery: UInt64
    /// Time every operation until this many samples (measured phase), then every Kth.
    @usableFromInline let minSamples: UInt64
    @usableFromInline let trylockEvery: UInt64
    @usableFromInline let opsLimit: UInt64
    @usableFromInline let seed: UInt64
    @usableFromInline let histogramMaxCycles: UInt64
    /// Injected fault (`Harness.faultHangLock`): thread 0 holds the lock forever.
    @usableFromInline let faultHang: Bool
    /// The validator's log of applied operations (nil: not logged).
    @usableFromInline let log: UnsafeMutablePointer<AppliedOperation>?
    @usableFromInline let logCapacity: UInt64
    /// The validator's record of the responses each client received (nil: not logged).
    @usableFromInline let received: UnsafeMutablePointer<AppliedOperation>?
    /// The validator's record of each client's reads and their version windows (nil: not
    /// logged, or an exclusive executor).
    @usableFromInline let readLog: UnsafeMutablePointer<ObservedRead>?
    /// Updates completed so far, all clients (with `readLog` only): bumped (release) after each
    /// update returns, loaded (acquire) before each read.
    @usableFromInline let completed: UnsafeMutablePointer<UInt64>?
}

/// One read of a reader-sharing executor as the validator keeps it: the operation, its result,
/// and the record's version word before and after it (`ReadTarget`).
public struct ObservedRead: Equatable, Sendable {
    public var operation: Operation
    public var result: UInt64
    public var versionBefore: UInt64
    public var versionAfter: UInt64
    /// Updates that had completed (returned to their client) before the read began.
    public var completedBefore: UInt64 = 0
    /// The updates applied when the read may first and last have seen the structure: a version
    /// counts two per update and is odd while one runs, so from `versionBefore / 2` (an update
    /// running then had not finished) to `(versionAfter + 1) / 2` (one running then may be seen);
    /// and never before `completedBefore` (linearisability: a read sees every update that
    /// completed before it began; a replica that had not caught up would show an older state).
    public var window: ClosedRange<Int> {
        let low = max(Int(versionBefore >> 1), Int(completedBefore))
        return low...max(low, Int((versionAfter &+ 1) >> 1))
    }

    public init(operation: Operation, result: UInt64, versionBefore: UInt64, versionAfter: UInt64,
                completedBefore: UInt64 = 0) {
        self.operation = operation
        self.result = result
        self.versionBefore = versionBefore
        self.versionAfter = versionAfter
        self.completedBefore = completedBefore
    }
}

extension Harness {
    /// One client thread's whole life. Specialised per (E, W): the loop below is the measured code.
    @inline(never)
    static func clientBody<E: Executor, W: Workload>(
        executor: E, workload: W, replicas: UnsafePointer<ReplicaEntry<W.Structure>>, slot: ThreadSlot,
        loop: LoopParameters, control: GroupControl, out: UnsafeMutablePointer<ThreadOutcome>
    ) {
        // Pinned already (ThreadGroup): the context, the thread's own words and the histogram are
        // first touched here, on the thread's node.
        let progress = control.progress(slot.index)
        var context = executor.makeContext(for: slot)
        var state = workload.makeThreadState(for: slot, seed: loop.seed)
        let words = LabMemory().allocate(bytes: 128).bindMemory(to: ApplierWords.self, capacity: 1)
        words.initialize(to: ApplierWords(handovers: 0, sameNode: 0, appliedAt: 0, readVersionBefore: 0,
                                          readVersionAfter: 0, readOverlaps: 0))
        let target = MeasuredTarget(structure: workload.structure, record: workload.record, me: UInt64(slot.index + 1),
                                    myNode: UInt64(slot.node), words: words, log: loop.log, logCapacity: loop.logCapacity,
                                    replicas: replicas)
        // A reader-sharing executor's two targets (unused, and compiled out, for an exclusive one).
        let sharing = E.readSharing != .exclusive
        let version = HarnessRecord.versionWord(workload.record)
        let updateTarget = VersionedTarget(inner: target, version: version)
        let readTarget = ReadTarget(structure: workload.structure, version: version, words: words, updates: updateTarget)
        var readHistogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: loop.histogramMaxCycles,
                                              numberOfSignificantValueDigits: .three)
        var updateHistogram = readHistogram
        var usageStart = cshims_thread_usage()
        var usageEnd = cshims_thread_usage()
        defer { LabMemory().deallocate(UnsafeMutableRawPointer(words), bytes: 128) }

        var phase = control.arriveAndWait()
        if phase == GroupPhase.abort {
            // The group could not start every thread: leave without an outcome.
            executor.freeContext(&context)
            return
        }
        if phase == GroupPhase.measure {
            executor.measurementStarts(&context)
            _ = cshims_thread_usage_now(&usageStart)
        }
        if loop.faultHang && slot.index == 0 { _ = executor.execute(Operation(code: 0), on: HangingTarget(), &context) }

        let sampleEvery = loop.sampleEvery
        let minSamples = loop.minSamples
        let trylockEvery = loop.trylockEvery
        // A thread descheduled through a whole short run meets `stop` at the barrier: it skips the
        // loop (which only notices a change of phase) and publishes an empty outcome, which the
        // controller reads for every thread.
        let limit = phase == GroupPhase.stop ? 0 : loop.opsLimit
        var ops: UInt64 = 0
        var opsAtMeasureStart: UInt64 = phase == GroupPhase.measure ? 0 : .max
        var reads: UInt64 = 0
        var readsAtMeasureStart: UInt64 = 0
        // Iterations left until the next timed one and the next tryExecute (.max when off), and
        // until the nearer of the two: the one countdown the common iteration decrements. The
        // first operations are all timed (sampleLeft 1) until minSamples are taken.
        var sampleLeft: UInt64 = sampleEvery == 0 ? .max : 1
        var samplesTaken: UInt64 = 0
        var tryLeft = trylockEvery == 0 ? UInt64.max : trylockEvery
        var untilSpecial = min(sampleLeft, tryLeft)

        // A thread descheduled from the barrier to the end of a short run sees `stop` first: it
        // did nothing, and says so.
        if phase != GroupPhase.stop {
            while ops < limit {
                let now = control.currentPhase()
                if now != phase {
                    phase = now
                    if phase == GroupPhase.stop { break }
                    if phase == GroupPhase.measure {
                        // Warm-up is over: measure from here.
                        opsAtMeasureStart = ops
                        readsAtMeasureStart = reads
                        words.pointee.handovers = 0
                        words.pointee.sameNode = 0
                        readHistogram.reset()
                        updateHistogram.reset()
                        executor.measurementStarts(&context)
                        samplesTaken = 0
                        if sampleEvery != 0 {
                            sampleLeft = 1
                            untilSpecial = min(sampleLeft, tryLeft)
                        }
                        _ = cshims_thread_usage_now(&usageStart)
                    }
                }
                let op = workload.nextOperation(&state)
                let isRead = W.Structure.isReadOnly(op)
                // Logged runs of a reader-sharing executor: the updates completed before this read.
                let completedBefore = sharing && isRead && loop.completed != nil ? cshims_u64_load_acquire(loop.completed!) : 0
                // Every Kth iteration is timed, every Jth a tryExecute: both out of line, so the
                // common iteration below stays small (one countdown, one branch).
                untilSpecial &-= 1
                let result: UInt64
                if untilSpecial == 0 {
                    let step = min(sampleLeft, tryLeft)
                    sampleLeft &-= step
                    tryLeft &-= step
                    let timed = sampleLeft == 0
                    let useTry = tryLeft == 0
                    if timed {
                        samplesTaken &+= 1
                        sampleLeft = samplesTaken < minSamples ? 1 : sampleEvery
                    }
                    if useTry { tryLeft = trylockEvery }
                    untilSpecial = min(sampleLeft, tryLeft)
                    if sharing && isRead {
                        result = specialIteration(executor: executor, context: &context, op: op, target: readTarget,
                                                  sharedRead: true, timed: timed, useTry: false, histogram: &readHistogram)
                    } else if sharing {
                        result = specialIteration(executor: executor, context: &context, op: op, target: updateTarget,
                                                  sharedRead: false, timed: timed, useTry: useTry, histogram: &updateHistogram)
                    } else if isRead {
                        result = specialIteration(executor: executor, context: &context, op: op, target: target,
                                                  sharedRead: false, timed: timed, useTry: useTry, histogram: &readHistogram)
                    } else {
                        result = specialIteration(executor: executor, context: &context, op: op, target: target,
                                                  sharedRead: false, timed: timed, useTry: useTry, histogram: &updateHistogram)
                    }
                } else if sharing {
                    result = isRead ? executor.executeRead(op, on: readTarget, &context)
                                    : executor.execute(op, on: updateTarget, &context)
                } else {
                    result = executor.execute(op, on: target, &context)
                }
                if sharing && isRead, let readLog = loop.readLog {
                    readLog[slot.index &* Int(limit) &+ Int(reads)] = ObservedRead(
                        operation: op, result: result, versionBefore: words.pointee.readVersionBefore,
                        versionAfter: words.pointee.readVersionAfter, completedBefore: completedBefore)
                } else if sharing, let completed = loop.completed {
                    // Release: this update's effects come before the count a reader loads.
                    _ = cshims_u64_fetch_add_release(completed, 1)
                }
                reads &+= isRead ? 1 : 0
                workload.completed(op, result: result, &state)
                if let received = loop.received { received[slot.index &* Int(limit) &+ Int(ops)] = AppliedOperation(operation: op, result: result) }
                ops &+= 1
                if ops & Harness.progressMask == 0 { cshims_u64_store_relaxed(progress, ops) }
                workload.outsideCriticalSection(&state)
                // Keeps the optimiser from merging iterations of lock-free (no-lock) loops.
                cshims_compiler_barrier()
            }
        }
        _ = cshims_thread_usage_now(&usageEnd)
        cshims_u64_store_relaxed(progress, ops)
        if opsAtMeasureStart == .max {
            // Never saw the measure phase (stopped before it began, or waited through all of it, as
            // a culled malthusian thread does): nothing of its warm-up belongs in the measurement.
            opsAtMeasureStart = ops
            readsAtMeasureStart = reads
            words.pointee.handovers = 0
            words.pointee.sameNode = 0
            readHistogram.reset()
            updateHistogram.reset()
        }
        var histogram = updateHistogram
        histogram.add(readHistogram)

        out.initialize(to: ThreadOutcome(
            thread: slot,
            measuredOps: ops &- opsAtMeasureStart,
            totalOps: ops,
            handoversIn: words.pointee.handovers,
            sameNodeHandoversIn: words.pointee.sameNode,
            measuredReads: reads &- readsAtMeasureStart,
            totalReads: reads,
            readOverlaps: words.pointee.readOverlaps,
            latencyCycles: histogram,
            readLatencyCycles: readHistogram,
            updateLatencyCycles: updateHistogram,
            userNanoseconds: usageEnd.user_ns &- usageStart.user_ns,
            systemNanoseconds: usageEnd.sys_ns &- usageStart.sys_ns,
            voluntarySwitches: usageEnd.voluntary_switches &- usageStart.voluntary_switches,
            involuntarySwitches: usageEnd.involuntary_switches &- usageStart.involuntary_switches,
            lastCPU: Int(cshims_current_cpu())))
        executor.freeContext(&context)
    }

    /// A helper thread (a delegation server): the executor serves through this thread's own
    /// target until the group stops. Its handovers are not reported per thread; its CPU time
    /// is read from outside (`helperCPUClocks`), through the kernel thread id it publishes.
    @inline(never)
    static func helperBody<E: Executor, W: Workload>(
        executor: E, workload: W, replicas: UnsafePointer<ReplicaEntry<W.Structure>>, slot: ThreadSlot,
        loop: LoopParameters, control: GroupControl, tid: UnsafeMutablePointer<UInt64>
    ) {
        // Release: the run reads it (acquire) after the start barrier, which `serve` arrives at.
        cshims_u64_store_release(tid, UInt64(cshims_gettid()))
        let words = LabMemory().allocate(bytes: 128).bindMemory(to: ApplierWords.self, capacity: 1)
        words.initialize(to: ApplierWords(handovers: 0, sameNode: 0, appliedAt: 0, readVersionBefore: 0,
                                          readVersionAfter: 0, readOverlaps: 0))
        defer { LabMemory().deallocate(UnsafeMutableRawPointer(words), bytes: 128) }
        let target = MeasuredTarget(structure: workload.structure, record: workload.record, me: UInt64(slot.index + 1),
                                    myNode: UInt64(slot.node), words: words, log: loop.log, logCapacity: loop.logCapacity,
                                    replicas: replicas)
        if loop.faultHang {
            // The injected hang, for a server: it hangs applying the first operation it serves.
            executor.serve(helper: slot, target: HangingTarget(), control: control)
        } else {
            executor.serve(helper: slot, target: target, control: control)
        }
    }

    /// The responses check of a logged run: the (operation, result) pairs the clients received
    /// must be, as a multiset, the pairs that were applied. A response lost, duplicated, stale or
    /// delivered to another operation shows as a pair in one and not the other.
    static func responsesFailure(applied: [AppliedOperation], received: UnsafeBufferPointer<AppliedOperation>,
                                 perThread: Int, threads: Int) -> WorkloadCheck {
        func key(_ a: AppliedOperation) -> [UInt64] { [a.operation.code, a.operation.arg0, a.operation.arg1, a.result] }
        let want = applied.map(key).sorted { $0.lexicographicallyPrecedes($1) }
        let have = received.prefix(perThread * threads).map(key).sorted { $0.lexicographicallyPrecedes($1) }
        guard want != have else { return .ok }
        let haveSet = Set(have)
        let missing = want.first { !haveSet.contains($0) } ?? want.first!
        return WorkloadCheck(failure: "responses: \(have.count) came back for \(want.count) operations applied, and they differ: operation code \(missing[0]) (args \(missing[1]), \(missing[2])) applied with result \(missing[3]) never came back as such")
    }

    /// The reads check of a logged run of a reader-sharing executor: replaying the updates in
    /// their order on the model, every read's result must be the model's for that read at some
    /// state inside its version window (`ObservedRead.window`): a read that returned what no
    /// state it could have seen gives saw a torn or stale structure.
    static func readsFailure<W: Workload>(_ workload: W, updates: UnsafeBufferPointer<AppliedOperation>,
                                          reads: [ObservedRead]) -> WorkloadCheck {
        let byStart = reads.sorted { $0.window.lowerBound < $1.window.lowerBound }
        var model = workload.makeModel()
        var open: [ObservedRead] = []
        var next = 0
        for state in 0...updates.count {
            while next < byStart.count, byStart[next].window.lowerBound <= state {
                open.append(byStart[next])
                next += 1
            }
            var stillOpen: [ObservedRead] = []
            for read in open {
                var copy = model  // a read changes nothing; the copy keeps a wrong model honest
                let want = copy.apply(read.operation)
                if want == read.result { continue }
                if read.window.upperBound <= state {
                    return WorkloadCheck(failure: "\(W.name): a read (code \(read.operation.code), args \(read.operation.arg0), \(read.operation.arg1)) returned \(W.describe(read.result)), which the structure held at no point of its window (after \(read.window.lowerBound) to \(read.window.upperBound) updates; the model returns \(W.describe(want)) after \(state))")
                }
                stillOpen.append(read)
            }
            open = stillOpen
            if state < updates.count { _ = model.apply(updates[state].operation) }
        }
        if let read = open.first ?? (next < byStart.count ? byStart[next] : nil) {
            return WorkloadCheck(failure: "\(W.name): a read saw version \(read.versionBefore)...\(read.versionAfter), beyond the \(updates.count) updates applied")
        }
        return .ok
    }

    /// A timed and/or tryExecute iteration: the rare kind, kept out of the common loop body.
    /// `sharedRead`: a reader-sharing executor's read, through `executeRead` (no trylock).
    @inline(never)
    static func specialIteration<E: Executor, T: AppliedTarget>(
        executor: E, context: inout E.Context, op: Operation, target: T, sharedRead: Bool, timed: Bool, useTry: Bool,
        histogram: inout Histogram<UInt64>
    ) -> UInt64 {
        target.words.pointee.appliedAt = 0
        let start: UInt64 = timed ? cshims_cycles() : 0
        var result: UInt64?
        if sharedRead {
            result = timed ? executor.executeRead(op, on: TimedTarget(inner: target), &context)
                           : executor.executeRead(op, on: target, &context)
        } else if useTry {
            if timed {
                repeat { result = executor.tryExecute(op, on: TimedTarget(inner: target), &context) } while result == nil && pause()
            } else {
                repeat { result = executor.tryExecute(op, on: target, &context) } while result == nil && pause()
            }
        } else {
            result = timed ? executor.execute(op, on: TimedTarget(inner: target), &context)
                           : executor.execute(op, on: target, &context)
        }
        if timed {
            // A delegation executor may have applied it on another thread: then the whole round trip.
            let appliedAt = target.words.pointee.appliedAt
            _ = histogram.record((appliedAt != 0 ? appliedAt : cshims_cycles()) &- start)
        }
        return result!
    }

    @inline(__always)
    static func pause() -> Bool {
        cshims_pause()
        return true
    }
}
