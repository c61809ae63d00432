// A run matrix: locks x thread counts x workloads x placements x repeats on one topology, in an
// order that interleaves the locks (a b a b ...) so slow phases of the machine hit every lock
// alike; and the one loop that runs a matrix for both `run` and `sweep`, each finished run
// appended to the results folder at once.

import Foundation

public struct RunMatrix: Sendable {
    public var locks: [LockSpec]
    public var threadCounts: [Int]
    public var repeats: Int
    /// Every workload of the matrix (`run` has one; an experiment file may sweep several).
    public var workloads: [WorkloadSpec]
    public var placements: [Placement]
    /// Run order: nil interleaves deterministically (repeat, threads, workload, placement, lock);
    /// a seed shuffles each repeat's runs with it (the sweep), repeats still outermost.
    public var shuffleSeed: UInt64?
    public var memory: MemoryPolicy
    public var warmupSeconds: Double
    public var durationSeconds: Double
    public var sampleEvery: Int
    public var seed: UInt64
    public var stallTimeoutSeconds: Double
    public var experiment: String
    /// The repeat number of the first repeat: 1, or one past the repeats a folder already holds
    /// (`firstRepeat(after:topology:)`), so that a second `run` into a folder adds repeats.
    public var firstRepeat: Int = 1
    /// What the matrix merged on the way in: a configuration is identified by its resolved
    /// settings, so a lock, thread count, workload or placement listed twice (or two spellings of
    /// the same lock settings) runs once, and each merge gets a line here for the caller to print.
    public private(set) var notes: [String] = []
    /// Only the runs of these curves (`curveKey`): one shard of a sharded sweep (ShardCut); nil
    /// runs every curve. Applied after the shuffle, so a shard runs in the order the whole would.
    public var curveFilter: Set<String>? = nil

    public init(locks: [LockSpec], threadCounts: [Int], repeats: Int = 1,
                workloads: [WorkloadSpec] = [.micro(.init())], placements: [Placement] = [.compact],
                shuffleSeed: UInt64? = nil, memory: MemoryPolicy = .local, warmupSeconds: Double = 0.2, durationSeconds: Double = 1,
                sampleEvery: Int = Harness.defaultSampleEvery, seed: UInt64 = 1, stallTimeoutSeconds: Double = 30,
                experiment: String = "") {
        let merged = LockSpec.mergingDuplicates(locks)
        self.locks = merged.specs
        var notes = merged.notes
        // Each axis once, by resolved settings (`identity`), in first-given order.
        func once<T>(_ items: [T], _ what: String, identity: (T) -> String, show: (T) -> String) -> [T] {
            var kept: [T] = []
            for item in items {
                if let first = kept.first(where: { identity($0) == identity(item) }) {
                    let same = show(first) == show(item) ? "\(show(item)) is listed more than once"
                        : "\(show(first)) and \(show(item)) have the same settings"
                    let note = "\(what) \(same): run once"
                    if !notes.contains(note) { notes.append(note) }
                } else {
                    kept.append(item)
                }
            }
            return kept
        }
        self.threadCounts = once(threadCounts, "thread count", identity: String.init, show: String.init)
        self.repeats = repeats
        self.workloads = once(workloads, "workload", identity: { "\($0.kind.rawValue) \($0.options.csvText)" },
                              show: { "'\($0.label)'" })
        self.placements = once(placements, "placement", identity: \.description, show: \.description)
        self.notes = notes
        self.shuffleSeed = shuffleSeed
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
        if threadCounts.isEmpty || threadCounts.contains(where: { $0 < 1 || $0 > Limits.maxThreads }) {
            let bad = threadCounts.first { $0 < 1 || $0 > Limits.maxThreads }.map(String.init)
            throw LabError.badValue(flag: "--threads", value: bad ?? "",
                                    accepted: "thread counts in 1...\(Limits.maxThreads)")
        }
        // The same caps as experiment files, and a cap on the whole matrix, checked by arithmetic
        // before anything is built: `--repeat 1000000000` is refused at once instead of planned.
        if !(1...Limits.maxRepeats).contains(repeats) {
            throw LabError.badValue(flag: "--repeat", value: "\(repeats)", accepted: "a count in 1...\(Limits.maxRepeats)")
        }
        if let count = plannedRunCount, count > Limits.maxPlannedRuns {
            throw LabError.impossible("the matrix holds \(count) runs, more than \(Limits.maxPlannedRuns): split it (fewer repeats, locks, thread counts or workloads)")
        } else if plannedRunCount == nil {
            throw LabError.impossible("the matrix holds more runs than can be counted: split it")
        }
        // Finite and at most a day, as experiment files allow: nan and inf must not reach the clock.
        if !(durationSeconds > 0 && durationSeconds <= 86_400) {
            throw LabError.badValue(flag: "--duration", value: "\(durationSeconds)", accepted: "seconds in (0, 86400]")
        }
        if !(warmupSeconds >= 0 && warmupSeconds <= 86_400) {
            throw LabError.badValue(flag: "--warmup", value: "\(warmupSeconds)", accepted: "seconds in [0, 86400]")
        }
        if !(stallTimeoutSeconds >= 0.1 && stallTimeoutSeconds <= 86_400) {
            throw LabError.badValue(flag: "--stall-timeout", value: "\(stallTimeoutSeconds)", accepted: "seconds in [0.1, 86400]")
        }
        if workloads.isEmpty || placements.isEmpty { throw LabError.impossible("no workload or no placement to run") }
        // A (lock, workload) pair that cannot run (a seqlock on a structure whose reads must not see
        // an update) is left out (`pairingNotes` says which); a lock left with no workload at all
        // is refused, with the reason.
        for lock in locks {
            let refusals = workloads.compactMap { $0.pairingRefusal(lock) }
            if refusals.count == workloads.count, let first = refusals.first { throw LabError.impossible(first) }
        }
        for workload in workloads {
            if let csLines = workload.csLines, csLines < 0 || csLines > 1 << 16 {
                throw LabError.badValue(flag: "--cs-lines", value: "\(csLines)", accepted: "0...65536")
            }
            // At most a second each, as experiment files allow.
            if let csNanoseconds = workload.csNanoseconds, !(0...1_000_000_000).contains(csNanoseconds) {
                throw LabError.badValue(flag: "--cs-ns", value: "\(csNanoseconds)", accepted: "ns in 0...1000000000")
            }
            if !(0...1_000_000_000).contains(workload.ncsNanoseconds) {
                throw LabError.badValue(flag: "--ncs-ns", value: "\(workload.ncsNanoseconds)", accepted: "ns in 0...1000000000")
            }
        }
        if sampleEvery < 0 { throw LabError.badValue(flag: "--sample", value: "\(sampleEvery)", accepted: "0 (off) or K >= 1") }
        if case let .node(n) = memory, n >= LabMemory.realNodeCount {
            throw LabError.badValue(flag: "--mem-node", value: "\(n)",
                                    accepted: "a real NUMA node 0...\(LabMemory.realNodeCount - 1), 'local' or 'interleave'")
        }
        if !topology.isThisSystem {
            throw LabError.impossible("cannot run on a loaded topology (\(topology.sourceDescription)): use `locklab plan` for other machines")
        }
        // A lock limited to fewer threads (no-lock: 1) is left out at larger counts (`skippedLocks`
        // says which); the matrix must still hold some run.
        if plannedRunCount == 0, let spec = locks.first, let maxThreads = spec.entry.descriptor.maxThreads {
            throw LockError.tooManyThreads(lock: spec.name, threads: threadCounts.min() ?? 0, max: maxThreads)
        }
        // An executor's server threads take CPUs from the placement: it must leave one for the clients.
        let helperCounts = Set(locks.map { $0.entry.descriptor.helperThreads })
        for t in threadCounts {
            for p in placements {
                for h in helperCounts.sorted() {
                    do {
                        _ = try topology.plan(threads: t, placement: p, helpers: h)
                    } catch let LabError.impossible(why) where h > 0 {
                        let names = locks.filter { $0.entry.descriptor.helperThreads == h }.map(\.label).joined(separator: ", ")
                        throw LabError.impossible("\(names): \(why)")
                    }
                }
            }
        }
    }

    /// How many runs `plannedRuns` holds, computed without building it; nil if it overflows Int.
    public var plannedRunCount: Int? {
        var perRepeat = 0
        for t in threadCounts {
            let locksThere = locks.filter { t <= ($0.entry.descriptor.maxThreads ?? .max) }
            let pairs = locksThere.reduce(0) { sum, lock in sum + workloads.filter { $0.pairingRefusal(lock) == nil }.count }
            let (b, o2) = pairs.multipliedReportingOverflow(by: placements.count)
            let o1 = false
            let (c, o3) = perRepeat.addingReportingOverflow(b)
            if o1 || o2 || o3 { return nil }
            perRepeat = c
        }
        let (total, overflow) = perRepeat.multipliedReportingOverflow(by: max(1, repeats))
        return overflow ? nil : total
    }

    /// One run of the matrix, before it is run.
    public struct PlannedRun: Sendable {
        public let spec: LockSpec
        public let threads: Int
        public let workload: WorkloadSpec
        public let placement: Placement
        public let repeatIndex: Int
    }

    /// The matrix in run order. Repeats are outermost, so every configuration has run r times
    /// before any runs r + 1 times; within a repeat the order is threads, workload, placement,
    /// lock (a b a b ...) or, with `shuffleSeed`, a seeded shuffle of that repeat's runs.
    /// (lock, threads) pairs beyond the lock's thread limit are left out.
    public var plannedRuns: [PlannedRun] {
        var runs: [PlannedRun] = []
        for r in firstRepeat...(firstRepeat + max(1, repeats) - 1) {
            var round: [PlannedRun] = []
            for t in threadCounts {
                for w in workloads {
                    for p in placements {
                        for spec in locks where t <= (spec.entry.descriptor.maxThreads ?? .max) && w.pairingRefusal(spec) == nil {
                            round.append(PlannedRun(spec: spec, threads: t, workload: w, placement: p, repeatIndex: r))
                        }
                    }
                }
            }
            if let seed = shuffleSeed {
                var rng = SplitMix64(seed: seed &+ UInt64(r) &* 0x9E37_79B9_7F4A_7C15)
                round.shuffle(using: &rng)
            }
            if let only = curveFilter { round.removeAll { !only.contains(curveKey($0)) } }
            runs += round
        }
        return runs
    }

    /// Locks that run at none of the thread counts.
    public var skippedLocks: [LockSpec] {
        locks.filter { spec in threadCounts.allSatisfy { $0 > (spec.entry.descriptor.maxThreads ?? .max) } }
    }

    /// One line per lock left out at some thread counts by its thread limit (no-lock: 1), so that
    /// no (lock, threads) case asked for disappears without a word.
    public var limitNotes: [String] {
        locks.compactMap { spec in
            guard let limit = spec.entry.descriptor.maxThreads else { return nil }
            let over = threadCounts.filter { $0 > limit }
            if over.isEmpty { return nil }
            let counts = over.map(String.init).joined(separator: ", ")
            return "\(spec.label) runs at most \(limit) thread\(limit == 1 ? "" : "s"): left out at \(counts) thread\(over == [1] ? "" : "s")"
        }
    }

    /// One line per (lock, workload) pair left out because the two cannot run together
    /// (`WorkloadSpec.pairingRefusal`), so that no pair asked for disappears without a word.
    public var pairingNotes: [String] {
        locks.flatMap { lock in workloads.compactMap { w in w.pairingRefusal(lock).map { "\(lock.label) on \(w.label) left out: \($0)" } } }
    }

    /// Seconds the matrix takes: per run its warm-up and measured time, plus `perRunOverhead`
    /// (thread start, pinning, lock set-up and writing; about 0.05 s on a small machine).
    public func estimatedSeconds(perRunOverhead: Double = 0.05) -> Double {
        Double(plannedRuns.count) * (warmupSeconds + durationSeconds + perRunOverhead)
    }

    /// The repeat number to start at in a folder holding `rows`: one past the highest repeat it
    /// records of any configuration of this matrix (1 in an empty folder or a folder of others).
    public func firstRepeat(after rows: [[String: String]], topology: Topology) -> Int {
        var once = self
        once.firstRepeat = 1
        once.repeats = 1
        let configurations = Set(once.plannedRuns.map { run -> String in
            let key = once.configKey(run, topology: topology)
            return String(key[..<(key.range(of: "|r", options: .backwards)?.lowerBound ?? key.endIndex)])
        })
        let highest = rows.compactMap { row -> Int? in
            guard let key = row["config_key"], let r = key.range(of: "|r", options: .backwards),
                  configurations.contains(String(key[..<r.lowerBound])) else { return nil }
            return Int(key[r.upperBound...])
        }.max() ?? 0
        return highest + 1
    }

    /// The key under which a planned run is recorded (runs.csv's `config_key`).
    public func configKey(_ run: PlannedRun, topology: Topology) -> String {
        RunDescription.configKey(spec: run.spec, threads: run.threads, placement: run.placement.description,
                                 virtualNodes: topology.virtualNodes, workload: run.workload,
                                 memNode: memory.description, durationSeconds: durationSeconds,
                                 repeatIndex: run.repeatIndex)
    }
}

/// What the matrix loop reports as it goes.
public enum MatrixEvent {
    /// Before the first run: runs planned in all, already recorded, to run now.
    case started(total: Int, alreadyRecorded: Int, toRun: Int)
    /// A run finished and was written.
    case finished(done: Int, toRun: Int, run: RunMatrix.PlannedRun, summary: RunSummary, etaSeconds: Double)
    /// Stopped on request after a run; `remaining` runs are left for a resume.
    case interrupted(remaining: Int)
    /// Something a reader of the results must know, said once per loop (a memory placement that
    /// did not take effect): printed as a note.
    case note(String)
}

/// What the matrix loop did.
public struct MatrixOutcome: Sendable {
    public var planned: Int
    public var skipped: Int
    public var ran: Int
    /// Runs of this process whose status is not ok (hung, mutex-violation, failed).
    public var failed: Int
    /// Runs already recorded when this process started whose status is not ok: after a hang the
    /// sweep continues in a fresh process, which must still report the hung run.
    public var failedEarlier: Int
    public var interrupted: Bool
    /// The run that hung, which ended the loop (its threads still spin), and the runs left after it.
    public var hung: (configKey: String, remaining: Int)?
}

extension RunMatrix {
    /// The one run loop of `run` and `sweep`: runs the planned runs in order, appending each to
    /// `writer` as it finishes. With `resume`, runs whose config key `writer` already holds are
    /// skipped. Stops after the current run when a stop was requested (SIGINT/SIGTERM), and after
    /// a hung run (its threads still spin: measuring more in this process would measure them too).
    public func execute(topology: Topology, writer: ResultsWriter, machine: String, gitCommit: String,
                        resume: Bool, onEvent: (MatrixEvent) -> Void) throws -> MatrixOutcome {
        let planned = plannedRuns
        let recorded = resume ? writer.recordedConfigKeys : []
        let todo = planned.filter { !recorded.contains(configKey($0, topology: topology)) }
        let plannedKeys = Set(planned.map { configKey($0, topology: topology) })
        let failedEarlier = resume ? writer.existingRows.filter {
            plannedKeys.contains($0["config_key"] ?? "") && $0["status"] != RunStatus.ok.rawValue
        }.count : 0
        onEvent(.started(total: planned.count, alreadyRecorded: planned.count - todo.count, toRun: todo.count))

        var outcome = MatrixOutcome(planned: planned.count, skipped: planned.count - todo.count, ran: 0, failed: 0,
                                    failedEarlier: failedEarlier, interrupted: false, hung: nil)
        let started = CycleClock.monotonicNanoseconds()
        var notesGiven = Set<String>()
        for (i, run) in todo.enumerated() {
            if StopRequest.requested {
                outcome.interrupted = true
                onEvent(.interrupted(remaining: todo.count - i))
                break
            }
            let memory = LabMemory(policy: self.memory)
            let (description, summary) = try measure(run, topology: topology, runID: writer.nextRunID(),
                                                     machine: machine, gitCommit: gitCommit, memory: memory)
            try writer.append(description, summary)
            if let note = memory.placement.note, notesGiven.insert(note).inserted { onEvent(.note(note)) }
            outcome.ran += 1
            if summary.status != .ok { outcome.failed += 1 }
            let perRun = Double(CycleClock.monotonicNanoseconds() &- started) / 1e9 / Double(i + 1)
            onEvent(.finished(done: i + 1, toRun: todo.count, run: run, summary: summary,
                              etaSeconds: perRun * Double(todo.count - i - 1)))
            if summary.status == .hung {
                outcome.hung = (description.configKey, todo.count - i - 1)
                break
            }
        }
        return outcome
    }

    /// Measures one planned run and returns its description and summary (not yet written).
    /// `memory` (default: a fresh allocator with the matrix's policy) records what placement the
    /// run's blocks got, for `mem_policy_applied`.
    public func measure(_ run: PlannedRun, topology: Topology, runID: String, machine: String,
                        gitCommit: String, memory: LabMemory? = nil) throws -> (RunDescription, RunSummary) {
        let memory = memory ?? LabMemory(policy: self.memory)
        let plan = try topology.plan(threads: run.threads, placement: run.placement,
                                     helpers: run.spec.entry.descriptor.helperThreads)
        var config = RunConfig(
            spec: run.spec, threads: plan.slots, nodeCount: topology.nodeCount,
            length: .timed(warmupSeconds: warmupSeconds, measureSeconds: durationSeconds),
            sampleEvery: sampleEvery, trylockEvery: 0, memory: memory,
            seed: seed &+ UInt64(run.repeatIndex), stallTimeoutSeconds: stallTimeoutSeconds,
            helpers: plan.helperSlots)
        config.nodeMemory = Self.replicaMemory(topology: topology, policy: self.memory)
        let raw = try run.spec.entry.run(config, run.workload)
        let summary = RunSummary(raw)
        let description = RunDescription(
            runID: runID, spec: run.spec, threads: run.threads, placement: run.placement.description,
            nodes: plan.nodesUsed, virtualNodes: topology.virtualNodes, oversubscribed: plan.oversubscribed,
            workload: run.workload, memNode: self.memory.description,
            durationSeconds: durationSeconds, warmupSeconds: warmupSeconds,
            repeatIndex: run.repeatIndex, seed: config.seed, sampleEvery: sampleEvery,
            machine: machine, gitCommit: gitCommit, experiment: experiment,
            memPolicyApplied: config.memory.placement.applied, serverCPUs: plan.helpers.compactMap(\.cpu))
        return (description, summary)
    }

    /// Where each node's replica goes (node replication): with the default policy (`--mem-node
    /// local`) on a machine of several real nodes, replica r is bound to node r's real node (the
    /// same mbind-and-check `--mem-node N` uses); otherwise (one real node, virtual nodes of one
    /// real node, or an explicit `--mem-node`) every replica goes where the run's memory goes.
    static func replicaMemory(topology: Topology, policy: MemoryPolicy) -> [LabMemory] {
        guard policy == .local, topology.realNodeCount > 1 else { return [] }
        var out: [LabMemory] = []
        for node in 0..<topology.nodeCount {
            let real = Set(topology.cpus.filter { $0.node == node }.map(\.realNode))
            guard real.count == 1, let r = real.first, r >= 0 else { return [] }
            out.append(LabMemory(policy: .node(r)))
        }
        return out
    }

    /// How latency is sampled, for the manifest.
    public static func samplingNote(_ sampleEvery: Int) -> String {
        sampleEvery == 0
            ? "latency not sampled"
            : "acquire latency (cycle counter before acquire to first instruction inside the critical section), measured phase only: each thread times every acquisition until it has \(Harness.minLatencySamples) samples, then every \(sampleEvery)th; HdrHistogram, 3 significant digits; converted to ns with the calibrated cycles/ns. Latency cells are empty (not 0) when a run sampled no acquisition (lat_samples = 0)"
    }
}
