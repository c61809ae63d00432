// `locklab run`: measure locks at given thread counts; append every run to DIR/runs.csv and
// DIR/threads.csv as it finishes, record the invocation in DIR/manifest.json, print a summary.

import ArgumentParser
import Foundation
import LockLab

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Measure locks: throughput, fairness, acquire latency, handover locality, CPU time.",
        discussion: """
            Repeats interleave the locks (a b a b ...) so that slow phases of the machine hit all alike. \
            Rows are appended and flushed as each run finishes.

            An existing DIR is extended if it holds the same machine, build and topology (else \
            refused, or moved aside with --replace-stale); a second run adds repeats with new repeat \
            numbers and seeds. A configuration is its resolved settings: a lock, thread count or \
            placement given twice, or a lock option given at its default, runs once, with a note.
            """)

    @Option(help: ArgumentHelp("Comma-separated locks, each NAME[:KEY=VALUE...] (see `locklab list`).", valueName: "locks"))
    var lock: String

    @Option(help: ArgumentHelp("Comma-separated thread counts, as in experiment files: N, 'all', 'per-node', '2x' (twice the CPUs), '1..all', '1..16 step 4', '1..all step node'.", valueName: "list"))
    var threads: String = "1,2"

    @Option(parsing: .unconditional, help: ArgumentHelp("Measured seconds per run.", valueName: "s"))
    var duration: Double = 1

    @Option(parsing: .unconditional, help: ArgumentHelp("Warm-up seconds before measuring.", valueName: "s"))
    var warmup: Double = 0.2

    @Option(name: .customLong("repeat"), parsing: .unconditional, help: ArgumentHelp("Repetitions of every (lock, threads).", valueName: "R"))
    var repeats: Int = 1

    @Option(help: ArgumentHelp("Comma-separated workloads, each NAME[:KEY=VALUE...]: micro (default), counter, queue, stack, hashtable, list, pqueue, snapshot; 'all' is every one (see README, Workloads).", valueName: "workloads"))
    var workload: String = "micro"

    @Option(name: .customLong("cs-lines"), parsing: .unconditional, help: ArgumentHelp("micro: shared cache lines read-modify-written in the critical section, the harness's record line included.", valueName: "K"))
    var csLines: Int = 1

    @Option(name: .customLong("cs-ns"), parsing: .unconditional, help: ArgumentHelp("Busy-wait inside the critical section, ns.", valueName: "ns"))
    var csNanoseconds: Int = 0

    @Option(name: .customLong("ncs-ns"), parsing: .unconditional, help: ArgumentHelp("Busy-wait between critical sections, ns.", valueName: "ns"))
    var ncsNanoseconds: Int = 0

    @Flag(name: .customLong("ncs-random"), help: "Draw each non-critical wait uniformly from [0, 2 x ncs-ns].")
    var ncsRandom = false

    @Option(help: ArgumentHelp("compact, scatter, cpus:LIST or os (threads unpinned, placed by the OS scheduler; nodes are labels) (see `locklab plan`).", valueName: "placement"))
    var placement: String = "compact"

    // Only this machine can be measured: `run` takes --virtual-nodes but not `plan`'s --xml or
    // --synthetic (which describe other machines).
    @Option(name: .customLong("virtual-nodes"), parsing: .unconditional,
            help: ArgumentHelp("Split this machine's cores into N virtual NUMA nodes (1 to the number of cores).",
                               valueName: "N"))
    var virtualNodes: Int?

    @Option(name: .customLong("mem-node"), help: ArgumentHelp("Where the lock and shared data live: a real NUMA node, 'interleave' or 'local' (first touch).", valueName: "N"))
    var memNode: String = "local"

    @Option(parsing: .unconditional, help: ArgumentHelp("Time every Kth acquisition of each thread (0: no latency).", valueName: "K"))
    var sample: Int = Harness.defaultSampleEvery

    @Option(parsing: .unconditional, help: ArgumentHelp("Seed for randomised waits.", valueName: "n"))
    var seed: UInt64 = 1

    @Option(name: .customLong("stall-timeout"), parsing: .unconditional, help: ArgumentHelp("Declare a run hung after this many seconds without progress.", valueName: "s"))
    var stallTimeout: Double = 30

    @Option(help: ArgumentHelp("Results folder (created if missing).", valueName: "DIR"))
    var out: String

    @Flag(name: .customLong("allow-mixing"), help: "Append to a folder that holds another machine's, build's or topology's results.")
    var allowMixing = false

    @Flag(name: .customLong("replace-stale"), help: "If DIR holds another machine's, build's or topology's results, move them to DIR.stale-BUILDID and start afresh.")
    var replaceStale = false
    @Option(help: ArgumentHelp("A coherence.csv (`locklab coherence --out`) for the handover ceiling at two threads; default: DIR/coherence.csv or DIR/../coherence/coherence.csv of this machine.", valueName: "FILE"))
    var coherence: String?

    func run() throws {
        let machineTopology = try Topology.load(.thisMachine, virtualNodes: virtualNodes)
        let specs = try LockSpec.parseList(lock)
        let counts = try ThreadCountSpec.parseList(threads, flag: "--threads").flatMap {
            $0.resolve(cpus: machineTopology.cpus.count, nodes: machineTopology.nodeCount)
        }
        var matrix = RunMatrix(
            locks: specs, threadCounts: counts, repeats: repeats,
            workloads: try WorkloadSpec.parseList(workload, defaults: [
                "cs-lines": csLines, "cs-ns": csNanoseconds, "ncs-ns": ncsNanoseconds, "ncs-random": ncsRandom ? 1 : 0]),
            placements: [try Placement(parsing: placement)], memory: try MemoryPolicy(parsing: memNode),
            warmupSeconds: warmup, durationSeconds: duration, sampleEvery: sample, seed: seed,
            stallTimeoutSeconds: stallTimeout)
        try matrix.validate(on: machineTopology)

        let machine = MachineInfo.current()
        let build = BuildInfo.current()
        try Manifest.refuseReferenceFolder(out)
        if replaceStale, let note = try Manifest.moveStaleAside(out, machine: machine, build: build,
                                                                 topology: machineTopology.summary) {
            print("note: \(note)")
        }
        let coherenceFile = try HandoverCeilingTable.locate(explicit: coherence, out: out, machine: machine)
        let writer = try ResultsWriter(directory: out)
        _ = try Manifest.record(in: out, machine: machine, build: build, topology: machineTopology.summary,
                                latencySampling: RunMatrix.samplingNote(sample),
                                command: CommandLine.arguments.joined(separator: " "), allowMixing: allowMixing)

        // A second run into a folder adds repeats (new repeat numbers, new seeds), never copies.
        matrix.firstRepeat = matrix.firstRepeat(after: writer.existingRows, topology: machineTopology)
        let planned = matrix.plannedRuns
        print("locklab run: \(plural(planned.count, "run")) on \(machineTopology.summary), \(placement), build \(build.buildID ?? "?") (commit \(build.gitCommit), \(build.configuration))")
        for note in machine.clock?.notes ?? [] { print("note: \(note)") }
        for note in matrix.notes + matrix.limitNotes + matrix.pairingNotes { print("note: \(note)") }
        if matrix.firstRepeat > 1 {
            func span(_ a: Int, _ b: Int) -> String { a == b ? "repeat \(a)" : "repeats \(a)-\(b)" }
            print("note: \(out) already holds \(span(1, matrix.firstRepeat - 1)) of these configurations: adding \(span(matrix.firstRepeat, matrix.firstRepeat + repeats - 1))")
        }
        for t in counts {
            if let note = try machineTopology.plan(threads: t, placement: matrix.placements[0]).note { print("note: \(note)") }
            // Executors with server threads: where the servers go, and whether the clients left are oversubscribed.
            for spec in matrix.locks where spec.entry.descriptor.helperThreads > 0 {
                let plan = try machineTopology.plan(threads: t, placement: matrix.placements[0], helpers: spec.entry.descriptor.helperThreads)
                print("note: \(spec.label) at \(plural(t, "thread")): server on CPU \(plan.helpers.map { $0.cpu.map(String.init) ?? "-" }.joined(separator: ",")); \(plan.oversubscribed ? "clients oversubscribed (\(t) on \(plural(plan.cpusUsed, "CPU")))" : "clients on \(plural(plan.cpusUsed, "CPU"))")")
            }
        }
        let showWorkload = matrix.workloads.count > 1 || matrix.workloads.first?.kind != .micro
        let header = ["lock"] + (showWorkload ? ["workload"] : [])
            + ["thr", "rep", "ops/s", "ns/op", "jain", "p50", "p99", "same-node", "comb", "ctx invol", "status"]
        // Widths from this run's own labels and counts, so long labels (cna:threshold-ns=1000) and
        // collapsed runs keep the columns aligned.
        let longestLabel: String = planned.map(\.spec.label).max { $0.count < $1.count } ?? ""
        let longestWorkload: String = planned.map(\.workload.label).max { $0.count < $1.count } ?? ""
        var widest: [String] = [longestLabel]
        if showWorkload { widest.append(longestWorkload) }
        widest += ["\(counts.max() ?? 1)", "\(repeats)", "1000 k", "1000 ms", "0.000", "1000 ms", "1000 ms",
                   "0.000", "00.00", "1000000", "mutex-violation"]
        var numeric: [Bool] = [false]
        if showWorkload { numeric.append(false) }
        numeric += [true, true, true, true, true, true, true, true, true, true, false]
        let table = StreamedTable(header: header, widest: widest, numeric: numeric)
        print(table.line(header))
        var rows: [(String, Int, Double)] = []
        var twoThreadRuns: [TwoThreadRun] = []
        var failures: [String] = []
        let outcome = try matrix.execute(topology: machineTopology, writer: writer, machine: machine.host,
                                         gitCommit: build.gitCommit, resume: false) { event in
            if case let .note(note) = event { print("note: \(note)") }
            guard case let .finished(_, _, run, summary, _) = event else { return }
            let name = showWorkload ? "\(run.spec.label) \(run.workload.label)" : run.spec.label
            rows.append((name, run.threads, summary.opsPerSecond))
            if run.threads == 2, summary.status == .ok {
                twoThreadRuns.append(TwoThreadRun(label: name, lock: run.spec.name,
                                                  opsPerSecond: summary.opsPerSecond,
                                                  handoversPerSecond: summary.handoversPerSecond))
            }
            // No latency sample: "-", never 0 (the CSV cell is empty).
            let sampled = summary.latency.samples > 0
            let cells = [run.spec.label] + (showWorkload ? [run.workload.label] : []) + [
                "\(run.threads)", "\(run.repeatIndex)",
                siRate(summary.opsPerSecond), siNanoseconds(summary.nanosecondsPerOp),
                String(format: "%.3f", summary.jainFairness),
                sampled ? siNanoseconds(summary.latency.p50) : "-", sampled ? siNanoseconds(summary.latency.p99) : "-",
                summary.sameNodeHandoverFraction.map { String(format: "%.3f", $0) } ?? "-",
                summary.combiningDegree.map { String(format: "%.2f", $0) } ?? "-",
                "\(summary.involuntarySwitches)", summary.status.rawValue,
            ]
            print(table.line(cells))
            if let failure = summary.failure {
                print("note: \(run.spec.label) at \(run.threads) threads failed: \(failure)")
                failures.append(failure)
            }
        }
        if outcome.hung != nil {
            print("note: run hung (no progress for \(stallTimeout) s); its threads were abandoned, stopping here")
        }
        printMedians(rows, repeats: repeats)
        // The handover ceiling models the microbenchmark's lines only.
        if let coherenceFile, let micro = matrix.workloads.first?.microParameters, matrix.workloads.count == 1 {
            if let note = coherenceFile.note { print(note) }
            try HandoverCeilingTable.print(runs: twoThreadRuns, coherencePath: coherenceFile.path, topology: machineTopology,
                                           placement: matrix.placements[0], workload: micro)
        }
        print("results: \(out)/runs.csv, \(out)/threads.csv, \(out)/manifest.json")
        if outcome.failed > 0 {
            let reason = failures.first.map { ": \($0)" } ?? " (see the status column)"
            throw LabError.impossible("\(plural(outcome.failed, "run")) failed\(reason)")
        }
    }

    /// Median throughput per (lock, threads) over repeats, when there are repeats.
    private func printMedians(_ rows: [(String, Int, Double)], repeats: Int) {
        guard repeats > 1 else { return }
        var groups: [String: [Double]] = [:]
        var order: [(String, Int)] = []
        for (lock, threads, opsPerSecond) in rows {
            let key = "\(lock)\u{1}\(threads)"
            if groups[key] == nil { order.append((lock, threads)) }
            groups[key, default: []].append(opsPerSecond)
        }
        print("\nmedian over \(repeats) repeats (min-max):")
        let table = order.map { lock, threads -> [String] in
            let xs = groups["\(lock)\u{1}\(threads)"]!.sorted()
            let median = xs.count % 2 == 1 ? xs[xs.count / 2] : (xs[xs.count / 2 - 1] + xs[xs.count / 2]) / 2
            return [lock, "\(threads)", siRate(median), siRate(xs.first!) + " - " + siRate(xs.last!)]
        }
        print(textTable(header: ["lock", "thr", "median ops/s", "range (min - max)"], rows: table))
    }
}
