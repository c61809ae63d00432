// The rows of runs.csv and threads.csv: the one place that knows their columns.

import Foundation

/// Everything about a run that is not a measurement: what was asked for.
public struct RunDescription: Sendable {
    public var runID: String
    public var spec: LockSpec
    public var threads: Int
    public var placement: String
    public var nodes: Int
    public var virtualNodes: Int?
    public var oversubscribed: Bool
    public var workload: WorkloadSpec
    public var memNode: String
    /// The placement the kernel reports for the run's memory (`LabMemory.placement.applied`):
    /// `mem_node` when it took effect, "local" when it fell back to first touch, "unverified".
    public var memPolicyApplied: String
    public var durationSeconds: Double
    public var warmupSeconds: Double
    public var repeatIndex: Int
    public var seed: UInt64
    public var sampleEvery: Int
    public var machine: String
    public var gitCommit: String
    public var experiment: String
    /// CPUs of the executor's helper (server) threads; empty for a lock.
    public var serverCPUs: [Int]
    /// This machine's and this build's identity (MachineInfo.machineID, BuildInfo.buildID): facts of
    /// the process that ran and records the run.
    public var machineID: String = MachineInfo.current().machineID ?? ""
    public var buildID: String = BuildInfo.current().buildID ?? ""

    public init(runID: String, spec: LockSpec, threads: Int, placement: String, nodes: Int, virtualNodes: Int?,
                oversubscribed: Bool, workload: WorkloadSpec, memNode: String, durationSeconds: Double,
                warmupSeconds: Double, repeatIndex: Int, seed: UInt64, sampleEvery: Int, machine: String,
                gitCommit: String, experiment: String = "", memPolicyApplied: String? = nil, serverCPUs: [Int] = []) {
        self.serverCPUs = serverCPUs
        self.runID = runID
        self.spec = spec
        self.threads = threads
        self.placement = placement
        self.nodes = nodes
        self.virtualNodes = virtualNodes
        self.oversubscribed = oversubscribed
        self.workload = workload
        self.memNode = memNode
        self.memPolicyApplied = memPolicyApplied ?? memNode
        self.durationSeconds = durationSeconds
        self.warmupSeconds = warmupSeconds
        self.repeatIndex = repeatIndex
        self.seed = seed
        self.sampleEvery = sampleEvery
        self.machine = machine
        self.gitCommit = gitCommit
        self.experiment = experiment
    }

    /// Identifies the configuration and repeat, independent of order and time: what a resumed
    /// sweep looks up to skip runs already recorded.
    public var configKey: String {
        Self.configKey(spec: spec, threads: threads, placement: placement, virtualNodes: virtualNodes, workload: workload,
                       memNode: memNode, durationSeconds: durationSeconds, repeatIndex: repeatIndex)
    }

    public static func configKey(spec: LockSpec, threads: Int, placement: String, virtualNodes: Int?,
                                 workload w: WorkloadSpec, memNode: String, durationSeconds: Double,
                                 repeatIndex: Int) -> String {
        // The microbenchmark keeps the keys it always had (folders recorded before workloads
        // existed resume); any other workload is named with every option.
        let what = w.kind == .micro
            ? ["cl\(w.csLines ?? 1)", "cs\(w.csNanoseconds ?? 0)", "ncs\(w.ncsNanoseconds)\(w.ncsRandom ? "r" : "")"]
            : ["w\(w.name):\(w.options.csvText)"]
        return ([spec.label, "t\(threads)", placement, "vn\(virtualNodes ?? 0)"] + what
            + ["mem\(memNode)", "d\(csvNumber(durationSeconds))", "r\(repeatIndex)"]).joined(separator: "|")
    }
}

public enum RunRecord {
    public static let runColumns = [
        "run_id", "experiment", "config_key", "lock", "lock_name", "lock_options", "threads", "placement", "nodes",
        "virtual_nodes", "oversubscribed", "server_cpu", "workload", "workload_options", "cs_lines", "cs_ns", "ncs_ns", "ncs_random", "mem_node",
        "mem_policy_applied", "duration_s", "warmup_s", "elapsed_s", "repeat", "seed", "status", "failure",
        "ops", "ops_per_sec", "ns_per_op", "jain_fairness", "min_thread_ops", "max_thread_ops",
        "lat_sample_every", "lat_samples", "lat_p50_ns", "lat_p99_ns", "lat_p999_ns", "lat_max_ns",
        "same_node_handover_frac", "handovers_per_sec", "node_switches_per_sec", "combining_degree",
        "read_ops_per_sec", "update_ops_per_sec", "read_lat_p50_ns", "read_lat_p99_ns", "update_lat_p50_ns",
        "update_lat_p99_ns", "min_thread_updates", "read_overlaps",
        "grace_periods_per_sec", "gp_p50_ns", "gp_p99_ns", "reclaim_hwm_objects", "reclaim_hwm_bytes",
        "log_appends_per_sec", "replica_lag_max", "replica_bytes", "log_bytes",
        "cpu_user_s", "cpu_sys_s", "cpu_s_per_mop", "ctx_vol", "ctx_invol", "mutex_ok", "counter", "acquisitions",
        "machine", "machine_id", "git_commit", "build_id", "utc_end",
    ]

    public static let threadColumns = [
        "run_id", "lock", "threads", "thread", "cpu", "last_cpu", "node", "ops", "ops_per_sec", "reads",
        "lat_samples", "lat_p50_ns", "lat_p99_ns", "lat_p999_ns", "lat_max_ns", "same_node_handover_frac",
        "cpu_user_s", "cpu_sys_s", "ctx_vol", "ctx_invol",
    ]

    public static func runRow(_ d: RunDescription, _ s: RunSummary) -> [String] {
        let fields: [String: String] = [
            "run_id": d.runID, "experiment": d.experiment, "config_key": d.configKey,
            "lock": d.spec.label, "lock_name": d.spec.name, "lock_options": d.spec.optionsText,
            "threads": "\(d.threads)", "placement": d.placement, "nodes": "\(d.nodes)",
            "virtual_nodes": d.virtualNodes.map(String.init) ?? "0",
            "oversubscribed": d.oversubscribed ? "1" : "0",
            "server_cpu": d.serverCPUs.map(String.init).joined(separator: ";"),
            "workload": d.workload.label, "workload_options": d.workload.options.csvText,
            "cs_lines": d.workload.csLines.map(String.init) ?? "", "cs_ns": d.workload.csNanoseconds.map(String.init) ?? "",
            "ncs_ns": "\(d.workload.ncsNanoseconds)", "ncs_random": d.workload.ncsRandom ? "1" : "0",
            "mem_node": d.memNode, "mem_policy_applied": d.memPolicyApplied,
            "duration_s": csvNumber(d.durationSeconds), "warmup_s": csvNumber(d.warmupSeconds),
            "elapsed_s": csvNumber(s.elapsedSeconds), "repeat": "\(d.repeatIndex)", "seed": "\(d.seed)",
            "status": s.status.rawValue, "failure": s.failure ?? "",
            "ops": "\(s.ops)", "ops_per_sec": csvNumber(s.opsPerSecond, decimals: 1),
            "ns_per_op": csvNumber(s.nanosecondsPerOp, decimals: 3),
            "jain_fairness": csvNumber(s.jainFairness), "min_thread_ops": "\(s.minThreadOps)",
            "max_thread_ops": "\(s.maxThreadOps)",
            "lat_sample_every": "\(d.sampleEvery)", "lat_samples": "\(s.latency.samples)",
            "lat_p50_ns": latencyCell(s.latency, \.p50), "lat_p99_ns": latencyCell(s.latency, \.p99),
            "lat_p999_ns": latencyCell(s.latency, \.p999), "lat_max_ns": latencyCell(s.latency, \.max),
            "same_node_handover_frac": s.sameNodeHandoverFraction.map { csvNumber($0) } ?? "",
            "handovers_per_sec": csvNumber(s.handoversPerSecond, decimals: 1),
            "node_switches_per_sec": csvNumber(s.nodeSwitchesPerSecond, decimals: 1),
            "combining_degree": s.combiningDegree.map { csvNumber($0, decimals: 3) } ?? "",
            "read_ops_per_sec": csvNumber(s.readOpsPerSecond, decimals: 1),
            "update_ops_per_sec": csvNumber(s.updateOpsPerSecond, decimals: 1),
            "read_lat_p50_ns": latencyCell(s.readLatency, \.p50), "read_lat_p99_ns": latencyCell(s.readLatency, \.p99),
            "update_lat_p50_ns": latencyCell(s.updateLatency, \.p50),
            "update_lat_p99_ns": latencyCell(s.updateLatency, \.p99),
            "min_thread_updates": "\(s.minThreadUpdates)", "read_overlaps": "\(s.readOverlaps)",
            // RCU executors only (empty otherwise): grace periods waited for per second of the
            // measured phase, their latency (ns), the most nodes awaiting a grace period at once.
            "grace_periods_per_sec": s.reclamation.map { csvNumber(s.elapsedSeconds > 0 ? Double($0.gracePeriods) / s.elapsedSeconds : 0, decimals: 1) } ?? "",
            "gp_p50_ns": s.reclamation.map { latencyCell($0.gracePeriodLatency, \.p50) } ?? "",
            "gp_p99_ns": s.reclamation.map { latencyCell($0.gracePeriodLatency, \.p99) } ?? "",
            "reclaim_hwm_objects": s.reclamation.map { "\($0.awaitingHighWater)" } ?? "",
            "reclaim_hwm_bytes": s.reclamation.map { "\($0.awaitingHighWaterBytes)" } ?? "",
            // Node replication only (empty otherwise): log entries appended per second of the
            // measured phase, the most entries a replica fell behind, the bytes of all replicas and
            // of the shared log (what replication costs in memory).
            "log_appends_per_sec": s.replication.map { csvNumber(s.elapsedSeconds > 0 ? Double($0.appended) / s.elapsedSeconds : 0, decimals: 1) } ?? "",
            "replica_lag_max": s.replication.map { "\($0.maxLag)" } ?? "",
            "replica_bytes": s.replication.map { "\($0.replicaBytes)" } ?? "",
            "log_bytes": s.replication.map { "\($0.logBytes)" } ?? "",
            "cpu_user_s": csvNumber(s.cpuUserSeconds), "cpu_sys_s": csvNumber(s.cpuSystemSeconds),
            // CPU seconds (user + sys, all threads, measured phase) per million acquisitions: what
            // waiting costs, spinning or parked; empty when nothing was acquired.
            "cpu_s_per_mop": s.ops > 0
                ? csvNumber((s.cpuUserSeconds + s.cpuSystemSeconds) / (Double(s.ops) / 1e6)) : "",
            "ctx_vol": "\(s.voluntarySwitches)", "ctx_invol": "\(s.involuntarySwitches)",
            "mutex_ok": s.mutexOK ? "1" : "0", "counter": "\(s.counter)", "acquisitions": "\(s.totalAcquisitions)",
            "machine": d.machine, "machine_id": d.machineID, "git_commit": d.gitCommit,
            "build_id": d.buildID, "utc_end": Manifest.utcNow(),
        ]
        return runColumns.map { fields[$0]! }
    }

    /// A latency percentile in ns, or an empty cell when nothing was sampled: no sample is not a
    /// latency of 0 (a spreadsheet would average it in).
    static func latencyCell(_ l: LatencySummary, _ value: KeyPath<LatencySummary, Double>) -> String {
        l.samples == 0 ? "" : csvNumber(l[keyPath: value], decimals: 1)
    }

    public static func threadRows(_ d: RunDescription, _ s: RunSummary) -> [[String]] {
        s.threads.map { t in
            let fields: [String: String] = [
                "run_id": d.runID, "lock": d.spec.label, "threads": "\(d.threads)", "thread": "\(t.thread)",
                "cpu": t.cpu.map(String.init) ?? "", "last_cpu": "\(t.lastCPU)", "node": "\(t.node)",
                "ops": "\(t.ops)", "ops_per_sec": csvNumber(t.opsPerSecond, decimals: 1),
                "reads": "\(t.reads)", "lat_samples": "\(t.latency.samples)",
                "lat_p50_ns": latencyCell(t.latency, \.p50), "lat_p99_ns": latencyCell(t.latency, \.p99),
                "lat_p999_ns": latencyCell(t.latency, \.p999), "lat_max_ns": latencyCell(t.latency, \.max),
                "same_node_handover_frac": t.sameNodeHandoverFraction.map { csvNumber($0) } ?? "",
                "cpu_user_s": csvNumber(t.cpuUserSeconds), "cpu_sys_s": csvNumber(t.cpuSystemSeconds),
                "ctx_vol": "\(t.voluntarySwitches)", "ctx_invol": "\(t.involuntarySwitches)",
            ]
            return threadColumns.map { fields[$0]! }
        }
    }
}

/// runs.csv and threads.csv of one results folder, appended together.
public final class ResultsWriter {
    public let directory: String
    let runs: CSVAppender
    let threads: CSVAppender
    /// Rows already in runs.csv when the folder was opened (for run ids and resume).
    public private(set) var existingRows: [[String: String]]

    public init(directory: String) throws {
        self.directory = directory
        try Manifest.refuseReferenceFolder(directory)
        try Manifest.createFolder(directory)
        let runsPath = (directory as NSString).appendingPathComponent("runs.csv")
        let threadsPath = (directory as NSString).appendingPathComponent("threads.csv")
        runs = try CSVAppender(path: runsPath, header: RunRecord.runColumns)
        existingRows = try readCSV(path: runsPath).rows
        try Self.dropOrphanThreadRows(path: threadsPath, runIDs: Set(existingRows.compactMap { $0["run_id"] }))
        threads = try CSVAppender(path: threadsPath, header: RunRecord.threadColumns)
    }

    /// Thread rows are written before their run row; a crash between the two leaves thread rows of
    /// a run that is not recorded (and will run again). Remove them, atomically (write + rename).
    static func dropOrphanThreadRows(path: String, runIDs: Set<String>) throws {
        guard let data = FileManager.default.contents(atPath: path) else { return }
        let text = String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard let header = lines.first else { return }
        // Only complete lines (newline-terminated) count; the run id is the first field.
        let complete = text.hasSuffix("\n") ? lines.dropFirst() : lines.dropFirst().dropLast()
        let kept = complete.filter { line in runIDs.contains(String(line.prefix { $0 != "," })) }
        guard kept.count != lines.count - 1 else { return }
        let tmp = path + ".tmp"
        let body = ([header] + kept).joined(separator: "\n") + "\n"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(body.utf8)) else {
            throw LabError.io("cannot write \(tmp)")
        }
        guard rename(tmp, path) == 0 else { throw LabError.io("cannot replace \(path)") }
    }

    /// The config keys already recorded (any status): a resumed sweep skips them.
    public var recordedConfigKeys: Set<String> { Set(existingRows.compactMap { $0["config_key"] }) }

    /// The next free run id in this folder.
    public func nextRunID() -> String {
        let used = existingRows.compactMap { Int($0["run_id"] ?? "") }.max() ?? 0
        return String(used + 1)
    }

    /// Writes the per-thread rows, then the run row (so a run row implies its thread rows).
    public func append(_ d: RunDescription, _ s: RunSummary) throws {
        for row in RunRecord.threadRows(d, s) { try threads.append(row) }
        let row = RunRecord.runRow(d, s)
        try runs.append(row)
        existingRows.append(Dictionary(uniqueKeysWithValues: zip(RunRecord.runColumns, row)))
    }
}
