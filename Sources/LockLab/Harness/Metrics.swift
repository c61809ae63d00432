// What a run measured, summarised: throughput, fairness, latency percentiles, handover locality,
// CPU time and context switches (README, "What a run writes").

import Histogram

public enum RunStatus: String, Sendable {
    case ok
    /// The plain counter (or the workload's shared data) does not match the acquisitions.
    case mutexViolation = "mutex-violation"
    /// No progress for the stall timeout: threads were left running and the run abandoned.
    case hung
    /// The run could not start (a thread could not be created or pinned): `failure` says why.
    case failed
}

/// The harness's raw result: per-thread outcomes and the mutual-exclusion check.
public struct RawRunResult {
    public let lock: String
    public let status: RunStatus
    /// Wall time of the measured phase.
    public let elapsedSeconds: Double
    public let threads: [ThreadOutcome]
    /// The plain counter's final value.
    public let counter: UInt64
    /// Acquisitions over the whole run (all threads, warm-up included).
    public let progressOps: UInt64
    /// The workload's checks (invariants, and the model replay when the operations were logged).
    public let workloadCheck: WorkloadCheck
    /// Why the run failed (status `failed`) or which workload check failed; nil otherwise.
    public let failure: String?
    /// Operations per combining pass or server sweep in the measured phase (delegation); nil
    /// where it does not apply.
    public var combiningDegree: Double? = nil
    /// CPU time of the executor's helper (server) threads in the measured phase, all helpers
    /// together: part of the run's `cpu_user_s` / `cpu_sys_s`, though not a client's row.
    public var helperUserNanoseconds: UInt64 = 0
    public var helperSystemNanoseconds: UInt64 = 0
    /// Grace periods and reclamation (RCU executors); nil otherwise.
    public var reclamation: ReclamationSummary? = nil
    /// The log and the replicas (node replication); nil otherwise.
    public var replication: ReplicationSummary? = nil
}

/// What a replicated executor's run cost and did (node replication): runs.csv's
/// `log_appends_per_sec`, `replica_lag_max`, `replica_bytes`, `log_bytes`.
public struct ReplicationSummary: Sendable, Equatable {
    /// Replicas of the structure (one per node of the run).
    public var replicas: Int
    /// Log entries appended in the measured phase (one per update).
    public var appended: UInt64
    /// The most entries any replica was behind the log's tail when it began a replay (whole run).
    public var maxLag: UInt64
    /// Bytes of every replica's structure (its pool included: `Workload.sharedMemory`) plus the
    /// executor's per-replica state.
    public var replicaBytes: Int
    /// Bytes of the shared log.
    public var logBytes: Int
    public init(replicas: Int, appended: UInt64, maxLag: UInt64, replicaBytes: Int, logBytes: Int) {
        self.replicas = replicas
        self.appended = appended
        self.maxLag = maxLag
        self.replicaBytes = replicaBytes
        self.logBytes = logBytes
    }
}

/// Latency percentiles in nanoseconds.
public struct LatencySummary: Sendable, Equatable {
    public var samples: UInt64 = 0
    public var p50: Double = 0
    public var p99: Double = 0
    public var p999: Double = 0
    public var max: Double = 0

    init(_ h: Histogram<UInt64>) {
        samples = h.totalCount
        guard samples > 0 else { return }
        p50 = CycleClock.nanoseconds(cycles: h.valueAtPercentile(50))
        p99 = CycleClock.nanoseconds(cycles: h.valueAtPercentile(99))
        p999 = CycleClock.nanoseconds(cycles: h.valueAtPercentile(99.9))
        max = CycleClock.nanoseconds(cycles: h.max)
    }
    public init() {}
}

public struct ThreadSummary: Sendable {
    public let thread: Int
    public let cpu: Int?
    public let node: Int
    public let lastCPU: Int
    public let ops: UInt64
    public let opsPerSecond: Double
    /// Read-only operations among `ops` (the structure's `isReadOnly`).
    public let reads: UInt64
    public let latency: LatencySummary
    public let sameNodeHandoverFraction: Double?
    public let cpuUserSeconds: Double
    public let cpuSystemSeconds: Double
    public let voluntarySwitches: UInt64
    public let involuntarySwitches: UInt64
}

public struct RunSummary: Sendable {
    public let status: RunStatus
    public let elapsedSeconds: Double
    public let ops: UInt64
    public let opsPerSecond: Double
    /// Wall nanoseconds per operation of the whole run (1e9 / opsPerSecond).
    public let nanosecondsPerOp: Double
    public let jainFairness: Double
    public let minThreadOps: UInt64
    public let maxThreadOps: UInt64
    public let latency: LatencySummary
    /// Handovers (acquisitions whose previous holder was another thread) that stayed on one node.
    public let sameNodeHandoverFraction: Double?
    public let handoversPerSecond: Double
    public let nodeSwitchesPerSecond: Double
    /// CPU time of every thread of the run in the measured phase: clients and helper (server)
    /// threads.
    public let cpuUserSeconds: Double
    public let cpuSystemSeconds: Double
    /// The helper (server) threads' share of `cpuUserSeconds + cpuSystemSeconds`; 0 without helpers.
    public let helperCPUSeconds: Double
    public let voluntarySwitches: UInt64
    public let involuntarySwitches: UInt64
    public let mutexOK: Bool
    public let counter: UInt64
    public let totalAcquisitions: UInt64
    public let threads: [ThreadSummary]
    /// Why the run failed (status `failed`); nil otherwise.
    public let failure: String?
    /// Operations per combining pass or server sweep (delegation executors); nil otherwise.
    public let combiningDegree: Double?
    /// Read-only operations among `ops`, and the reads' and updates' shares of `opsPerSecond`
    /// (ops/s); both rates are reported for every executor, exclusive or reader-sharing.
    public let reads: UInt64
    public let readOpsPerSecond: Double
    public let updateOpsPerSecond: Double
    /// Sampled latencies (ns) of the reads and of the updates alone.
    public let readLatency: LatencySummary
    public let updateLatency: LatencySummary
    /// The fewest updates any thread completed in the measured phase: 0 while others update is
    /// writer starvation (a reader-preferring lock under a read-mostly load).
    public let minThreadUpdates: UInt64
    /// Reads (whole run) that overlapped an update: 0 for a correct `.shared` executor (else the
    /// run is a mutex violation); the retried or old-version reads of an `.optimistic` one.
    public let readOverlaps: UInt64
    /// Grace periods and reclamation (RCU executors); nil otherwise.
    public let reclamation: ReclamationSummary?
    /// The log and the replicas (node replication); nil otherwise.
    public let replication: ReplicationSummary?

    public init(_ raw: RawRunResult) {
        status = raw.status
        reclamation = raw.reclamation
        replication = raw.replication
        combiningDegree = raw.combiningDegree
        failure = raw.failure
        elapsedSeconds = raw.elapsedSeconds
        let perThread = raw.threads.map(\.measuredOps)
        ops = perThread.reduce(0, +)
        opsPerSecond = elapsedSeconds > 0 ? Double(ops) / elapsedSeconds : 0
        nanosecondsPerOp = opsPerSecond > 0 ? 1e9 / opsPerSecond : 0
        jainFairness = Self.jain(perThread.map { Double($0) })
        minThreadOps = perThread.min() ?? 0
        maxThreadOps = perThread.max() ?? 0
        var merged: Histogram<UInt64>? = nil
        for t in raw.threads {
            if merged == nil { merged = t.latencyCycles } else { merged!.add(t.latencyCycles) }
        }
        latency = merged.map { LatencySummary($0) } ?? LatencySummary()
        reads = raw.threads.reduce(0) { $0 + $1.measuredReads }
        readOpsPerSecond = elapsedSeconds > 0 ? Double(reads) / elapsedSeconds : 0
        updateOpsPerSecond = elapsedSeconds > 0 ? Double(ops - reads) / elapsedSeconds : 0
        func merge(_ path: KeyPath<ThreadOutcome, Histogram<UInt64>>) -> LatencySummary {
            var h: Histogram<UInt64>? = nil
            for t in raw.threads {
                if h == nil { h = t[keyPath: path] } else { h!.add(t[keyPath: path]) }
            }
            return h.map { LatencySummary($0) } ?? LatencySummary()
        }
        readLatency = merge(\.readLatencyCycles)
        updateLatency = merge(\.updateLatencyCycles)
        minThreadUpdates = raw.threads.map { $0.measuredOps - $0.measuredReads }.min() ?? 0
        readOverlaps = raw.threads.reduce(0) { $0 + $1.readOverlaps }
        let handovers = raw.threads.reduce(UInt64(0)) { $0 + $1.handoversIn }
        let same = raw.threads.reduce(UInt64(0)) { $0 + $1.sameNodeHandoversIn }
        sameNodeHandoverFraction = handovers > 0 ? Double(same) / Double(handovers) : nil
        handoversPerSecond = elapsedSeconds > 0 ? Double(handovers) / elapsedSeconds : 0
        nodeSwitchesPerSecond = elapsedSeconds > 0 ? Double(handovers - same) / elapsedSeconds : 0
        // Every thread's CPU: the clients' and the helper (server) threads'.
        cpuUserSeconds = Double(raw.threads.reduce(raw.helperUserNanoseconds) { $0 + $1.userNanoseconds }) / 1e9
        cpuSystemSeconds = Double(raw.threads.reduce(raw.helperSystemNanoseconds) { $0 + $1.systemNanoseconds }) / 1e9
        helperCPUSeconds = Double(raw.helperUserNanoseconds + raw.helperSystemNanoseconds) / 1e9
        voluntarySwitches = raw.threads.reduce(0) { $0 + $1.voluntarySwitches }
        involuntarySwitches = raw.threads.reduce(0) { $0 + $1.involuntarySwitches }
        counter = raw.counter
        totalAcquisitions = raw.progressOps
        mutexOK = raw.status != .mutexViolation
        let elapsed = elapsedSeconds
        threads = raw.threads.map { t in
            ThreadSummary(
                thread: t.thread.index, cpu: t.thread.cpu, node: t.thread.node, lastCPU: t.lastCPU,
                ops: t.measuredOps, opsPerSecond: elapsed > 0 ? Double(t.measuredOps) / elapsed : 0,
                reads: t.measuredReads,
                latency: LatencySummary(t.latencyCycles),
                sameNodeHandoverFraction: t.handoversIn > 0 ? Double(t.sameNodeHandoversIn) / Double(t.handoversIn) : nil,
                cpuUserSeconds: Double(t.userNanoseconds) / 1e9, cpuSystemSeconds: Double(t.systemNanoseconds) / 1e9,
                voluntarySwitches: t.voluntarySwitches, involuntarySwitches: t.involuntarySwitches)
        }
    }

    /// Jain's fairness index: (sum x)^2 / (n * sum x^2); 1 is perfectly fair, 1/n is one thread.
    public static func jain(_ xs: [Double]) -> Double {
        guard !xs.isEmpty else { return 0 }
        let s = xs.reduce(0, +)
        let s2 = xs.reduce(0) { $0 + $1 * $1 }
        return s2 > 0 ? s * s / (Double(xs.count) * s2) : 0
    }
}
