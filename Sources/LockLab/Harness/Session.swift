// A session: a matrix of runs (locks x thread counts x repeats) on one topology and placement,
// executed in an order that interleaves the locks (a b a b …) so slow phases of the machine hit
// every lock alike, each finished run appended to the results folder at once.

import Foundation

public struct SessionSettings: Sendable {
    public var locks: [LockSpec]
    public var threadCounts: [Int]
    public var repeats: Int
    public var workload: MicrobenchmarkParameters
    public var placement: Placement
    public var memory: MemoryPolicy
    public var warmupSeconds: Double
    public var durationSeconds: Double
    public var sampleEvery: Int
    public var seed: UInt64
    public var stallTimeoutSeconds: Double
    public var experiment: String

    public init(locks: [LockSpec], threadCounts: [Int], repeats: Int = 1,
                workload: MicrobenchmarkParameters = .init(), placement: Placement = .compact,
                memory: MemoryPolicy = .local, warmupSeconds: Double = 0.2, durationSeconds: Double = 1,
                sampleEvery: Int = Harness.defaultSampleEvery, seed: UInt64 = 1, stallTimeoutSeconds: Double = 30,
                experiment: String = "") {
        self.locks = locks
        self.threadCounts = threadCounts
        self.repeats = repeats
        self.workload = workload
        self.placement = placement
        self.memory = memory
        self.warmupSeconds = warmupSeconds
        self.durationSeconds = durationSeconds
        self.sampleEvery = sampleEvery
        self.seed = seed
        self.stallTimeoutSeconds = stallTimeoutSeconds
        self.experiment = experiment
    }

    /// Checks everything that can be checked before the first run; throws one clear error.
    public func validate(on topology: Topology) throws {
        if locks.isEmpty { throw LabError.badValue(flag: "--lock", value: "", accepted: "at least one lock") }
        if threadCounts.isEmpty || threadCounts.contains(where: { $0 < 1 }) {
            throw LabError.badValue(flag: "--threads", value: threadCounts.map(String.init).joined(separator: ","),
                                    accepted: "positive thread counts")
        }
        if repeats < 1 { throw LabError.badValue(flag: "--repeat", value: "\(repeats)", accepted: "a count >= 1") }
        if !(durationSeconds > 0) {
            throw LabError.badValue(flag: "--duration", value: "\(durationSeconds)", accepted: "seconds > 0")
        }
        if warmupSeconds < 0 { throw LabError.badValue(flag: "--warmup", value: "\(warmupSeconds)", accepted: "seconds >= 0") }
        if workload.csLines < 0 || workload.csLines > 1 << 16 {
            throw LabError.badValue(flag: "--cs-lines", value: "\(workload.csLines)", accepted: "0...65536")
        }
        if workload.csNanoseconds < 0 { throw LabError.badValue(flag: "--cs-ns", value: "\(workload.csNanoseconds)", accepted: "ns >= 0") }
        if workload.ncsNanoseconds < 0 { throw LabError.badValue(flag: "--ncs-ns", value: "\(workload.ncsNanoseconds)", accepted: "ns >= 0") }
        if sampleEvery < 0 { throw LabError.badValue(flag: "--sample", value: "\(sampleEvery)", accepted: "0 (off) or K >= 1") }
        if case let .node(n) = memory, n >= LabMemory.realNodeCount {
            throw LabError.badValue(flag: "--mem-node", value: "\(n)",
                                    accepted: "a real NUMA node 0...\(LabMemory.realNodeCount - 1), 'local' or 'interleave'")
        }
        if !topology.isThisSystem {
            throw LabError.impossible("cannot run on a loaded topology (\(topology.sourceDescription)): use `locklab plan` for other machines")
        }
        // A lock limited to fewer threads (null: 1) is skipped at larger counts, but must run somewhere.
        for spec in locks {
            if let maxThreads = spec.entry.descriptor.maxThreads, let t = threadCounts.min(), t > maxThreads {
                throw LockError.tooManyThreads(lock: spec.name, threads: t, max: maxThreads)
            }
        }
        for t in threadCounts { _ = try topology.plan(threads: t, placement: placement) }
    }

    /// One run of the matrix, before it is run.
    public struct PlannedRun: Sendable {
        public let spec: LockSpec
        public let threads: Int
        public let repeatIndex: Int
    }

    /// Repeats outermost, then thread counts, then locks: a b a b … for every thread count.
    /// (lock, threads) pairs beyond the lock's thread limit are left out.
    public var plannedRuns: [PlannedRun] {
        var runs: [PlannedRun] = []
        for r in 1...max(1, repeats) {
            for t in threadCounts {
                for spec in locks where t <= (spec.entry.descriptor.maxThreads ?? .max) {
                    runs.append(PlannedRun(spec: spec, threads: t, repeatIndex: r))
                }
            }
        }
        return runs
    }
}

public enum Session {
    /// Runs one planned run and returns its description and summary (not yet written).
    public static func execute(_ run: SessionSettings.PlannedRun, settings: SessionSettings, topology: Topology,
                               runID: String, machine: String, gitCommit: String) throws -> (RunDescription, RunSummary) {
        let plan = try topology.plan(threads: run.threads, placement: settings.placement)
        let threads = plan.threads.map { HarnessThread(index: $0.thread, cpu: $0.cpu, node: $0.node) }
        let config = RunConfig(
            spec: run.spec, threads: threads, nodeCount: topology.nodeCount,
            length: .timed(warmupSeconds: settings.warmupSeconds, measureSeconds: settings.durationSeconds),
            sampleEvery: settings.sampleEvery, trylockEvery: 0, memory: LabMemory(policy: settings.memory),
            seed: settings.seed &+ UInt64(run.repeatIndex), stallTimeoutSeconds: settings.stallTimeoutSeconds)
        let raw = try run.spec.entry.run(config, settings.workload)
        let summary = RunSummary(raw)
        let description = RunDescription(
            runID: runID, spec: run.spec, threads: run.threads, placement: settings.placement.description,
            nodes: plan.nodesUsed, virtualNodes: topology.virtualNodes, oversubscribed: plan.oversubscribed,
            workload: settings.workload, memNode: settings.memory.description,
            durationSeconds: settings.durationSeconds, warmupSeconds: settings.warmupSeconds,
            repeatIndex: run.repeatIndex, seed: config.seed, sampleEvery: settings.sampleEvery,
            machine: machine, gitCommit: gitCommit, experiment: settings.experiment)
        return (description, summary)
    }

    /// How latency is sampled, for the manifest.
    public static func samplingNote(_ sampleEvery: Int) -> String {
        sampleEvery == 0
            ? "latency not sampled"
            : "acquire latency (cycle counter before acquire to first instruction inside the critical section) of every \(sampleEvery)th acquisition per thread, measured phase only; HdrHistogram, 3 significant digits; converted to ns with the calibrated cycles/ns"
    }
}
