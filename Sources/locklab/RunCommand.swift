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
            Repeats interleave the locks (a b a b ...) so that slow phases of the machine hit all alike.
            Rows are appended and flushed as each run finishes; an existing DIR is extended if it holds
            the same machine, build and topology.
            """)

    @Option(help: ArgumentHelp("Comma-separated locks, each NAME[:KEY=VALUE...] (see `locklab list`).", valueName: "locks"))
    var lock: String

    @Option(help: ArgumentHelp("Comma-separated thread counts; 'all' is every CPU of the topology.", valueName: "list"))
    var threads: String = "1,2"

    @Option(parsing: .unconditional, help: ArgumentHelp("Measured seconds per run.", valueName: "s"))
    var duration: Double = 1

    @Option(parsing: .unconditional, help: ArgumentHelp("Warm-up seconds before measuring.", valueName: "s"))
    var warmup: Double = 0.2

    @Option(name: .customLong("repeat"), parsing: .unconditional, help: ArgumentHelp("Repetitions of every (lock, threads).", valueName: "R"))
    var repeats: Int = 1

    @Option(name: .customLong("cs-lines"), parsing: .unconditional, help: ArgumentHelp("Shared cache lines read-modify-written in the critical section.", valueName: "K"))
    var csLines: Int = 1

    @Option(name: .customLong("cs-ns"), parsing: .unconditional, help: ArgumentHelp("Busy-wait inside the critical section, ns.", valueName: "ns"))
    var csNanoseconds: Int = 0

    @Option(name: .customLong("ncs-ns"), parsing: .unconditional, help: ArgumentHelp("Busy-wait between critical sections, ns.", valueName: "ns"))
    var ncsNanoseconds: Int = 0

    @Flag(name: .customLong("ncs-random"), help: "Draw each non-critical wait uniformly from [0, 2 x ncs-ns].")
    var ncsRandom = false

    @Option(help: ArgumentHelp("compact, scatter or cpus:LIST (see `locklab plan`).", valueName: "placement"))
    var placement: String = "compact"

    @OptionGroup var topology: TopologyOptions

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

    func run() throws {
        let machineTopology = try topology.load()
        let specs = try LockSpec.parseList(lock)
        let counts = try parseThreadCounts(threads, cpus: machineTopology.cpus.count)
        let settings = SessionSettings(
            locks: specs, threadCounts: counts, repeats: repeats,
            workloads: [MicrobenchmarkParameters(csLines: csLines, csNanoseconds: csNanoseconds,
                                                 ncsNanoseconds: ncsNanoseconds, ncsRandom: ncsRandom)],
            placements: [try Placement(parsing: placement)], memory: try MemoryPolicy(parsing: memNode),
            warmupSeconds: warmup, durationSeconds: duration, sampleEvery: sample, seed: seed,
            stallTimeoutSeconds: stallTimeout)
        try settings.validate(on: machineTopology)

        let machine = MachineInfo.current()
        let build = BuildInfo.current()
        let writer = try ResultsWriter(directory: out)
        _ = try Manifest.record(in: out, machine: machine, build: build, topology: machineTopology.summary,
                                latencySampling: Session.samplingNote(sample),
                                command: CommandLine.arguments.joined(separator: " "), allowMixing: allowMixing)

        let planned = settings.plannedRuns
        print("locklab run: \(plural(planned.count, "run")) on \(machineTopology.summary), \(placement), build \(build.gitCommit) (\(build.configuration))")
        for note in machine.clock?.notes ?? [] { print("note: \(note)") }
        for spec in settings.skippedLocks {
            print("note: \(spec.label) runs at most \(spec.entry.descriptor.maxThreads ?? 0) thread(s): skipped")
        }
        for t in counts {
            if let note = try machineTopology.plan(threads: t, placement: settings.placements[0]).note { print("note: \(note)") }
        }
        let header = ["lock", "thr", "rep", "Mops/s", "ns/op", "jain", "p50 ns", "p99 ns", "same-node", "ctx invol", "status"]
        print(textTable(header: header, rows: []))
        var rows: [(String, Int, Double)] = []
        var failures = 0
        for run in planned {
            let (description, summary) = try Session.execute(
                run, settings: settings, topology: machineTopology, runID: writer.nextRunID(),
                machine: machine.host, gitCommit: build.gitCommit)
            try writer.append(description, summary)
            if summary.status != .ok { failures += 1 }
            rows.append((run.spec.label, run.threads, summary.opsPerSecond))
            let cells = [
                run.spec.label, "\(run.threads)", "\(run.repeatIndex)",
                String(format: "%.3f", summary.opsPerSecond / 1e6), String(format: "%.1f", summary.nanosecondsPerOp),
                String(format: "%.3f", summary.jainFairness),
                String(format: "%.0f", summary.latency.p50), String(format: "%.0f", summary.latency.p99),
                summary.sameNodeHandoverFraction.map { String(format: "%.3f", $0) } ?? "-",
                "\(summary.involuntarySwitches)", summary.status.rawValue,
            ]
            // Same widths as the header line: one table, streamed row by row.
            print(textTable(header: header, rows: [cells]).split(separator: "\n").last.map(String.init) ?? "")
            if summary.status == .hung {
                print("note: run hung (no progress for \(stallTimeout) s); its threads were abandoned, stopping here")
                break
            }
        }
        printMedians(rows, repeats: repeats)
        print("results: \(out)/runs.csv, \(out)/threads.csv, \(out)/manifest.json")
        if failures > 0 { throw LabError.impossible("\(plural(failures, "run")) failed (see the status column)") }
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
            return [lock, "\(threads)", String(format: "%.3f", median / 1e6),
                    String(format: "%.3f-%.3f", xs.first! / 1e6, xs.last! / 1e6)]
        }
        print(textTable(header: ["lock", "thr", "median Mops/s", "range"], rows: table))
    }
}

/// "1,2,4" or "all" (every CPU of the topology) into thread counts.
func parseThreadCounts(_ text: String, cpus: Int) throws -> [Int] {
    let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    var counts: [Int] = []
    for item in items {
        if item == "all" {
            counts.append(cpus)
        } else if let n = Int(item), n >= 1, n <= Harness.maxThreads {
            counts.append(n)
        } else {
            throw LabError.badValue(flag: "--threads", value: item,
                                    accepted: "whole numbers in 1...\(Harness.maxThreads) or 'all', comma-separated")
        }
    }
    if counts.isEmpty { throw LabError.badValue(flag: "--threads", value: text, accepted: "at least one thread count") }
    return counts
}
