// `locklab validate --lock L[,..] --workload W[,..] --threads 1,2,4 --seconds S`: the test suite's
// validator (Sources/LockLab/Harness/Validator.swift) for any lock or executor on any workload.
// One row per (lock, workload, threads) as it finishes; a failure is also one line on stderr naming
// the case, the check and the seed, and the command exits 1 (bad input exits 2, as everywhere).

import ArgumentParser
import Foundation
import LockLab

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Validate locks and executors on workloads: counter, invariants, model replay, responses, reads.",
        discussion: """
            Runs each lock (or executor) on each workload at each thread count with every operation \
            logged, and checks: the plain counter equals the updates; the structure's invariants \
            hold; the log replayed on the sequential model gives the results returned (model); each \
            client got its own operations' results (responses); a reader-sharing executor's reads \
            overlapped no update and return what a state between their start and end returns \
            (reads). Threads are unpinned (preemption interleaves them), on node labels i mod \
            --nodes; a lock with trylock takes every third acquisition by trylock. Runs repeat with \
            seeds --seed, --seed + 1, ... and grow while the budget lasts. A pairing a lock refuses \
            (seqlock on a structure whose reads must not see an update) is skipped and said. Exit \
            status: 0 every case passed, 1 a case failed, 2 bad input.
            """)

    @Option(help: ArgumentHelp("Comma-separated locks or executors, each NAME[:KEY=VALUE...]; 'all' is every lock and delegation executor, 'rcu' every RCU flavour.", valueName: "locks"))
    var lock: String

    @Option(help: ArgumentHelp("Comma-separated workloads, each NAME[:KEY=VALUE...]; 'all' is every workload with its defaults.", valueName: "workloads"))
    var workload: String = "all"

    @Option(help: ArgumentHelp("Comma-separated client thread counts (also 'all', '2x', A..B).", valueName: "list"))
    var threads: String = "1,2,4"

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds for each lock and workload, shared among the thread counts (at least one run each).", valueName: "s"))
    var seconds: Double = 1

    @Option(parsing: .unconditional, help: ArgumentHelp("Node labels the threads are spread over (thread i on node i mod N).", valueName: "N"))
    var nodes: Int = 2

    @Option(parsing: .unconditional, help: ArgumentHelp("Seed of the first run of each case.", valueName: "n"))
    var seed: UInt64 = 1

    @Flag(help: "Also validate each workload at its edges (a heap that empties, equal priorities, one or two keys).")
    var edges = false

    @Option(name: .customLong("stall-timeout"), parsing: .unconditional,
            help: ArgumentHelp("A run with no progress for this many seconds has hung (a failure).", valueName: "s"))
    var stallTimeout: Double = 60

    func run() throws {
        guard seconds.isFinite, seconds > 0, seconds <= 86_400 else {
            throw LabError.badValue(flag: "--seconds", value: "\(seconds)", accepted: "seconds in (0, 86400]")
        }
        guard stallTimeout.isFinite, stallTimeout >= 0.1, stallTimeout <= 86_400 else {
            throw LabError.badValue(flag: "--stall-timeout", value: "\(stallTimeout)", accepted: "seconds in [0.1, 86400]")
        }
        guard (1...4096).contains(nodes) else {
            throw LabError.badValue(flag: "--nodes", value: "\(nodes)", accepted: "a node count in 1...4096")
        }
        let topology = try Topology.load()
        let specs = try LockSpec.parseList(lock)
        var workloads = try WorkloadSpec.parseList(workload)
        if edges {
            workloads = workloads.flatMap { w in [w] + WorkloadSpec.edgeCases(w.kind).filter { $0.label != w.label } }
        }
        let counts = try ThreadCountSpec.parseList(threads, flag: "--threads").flatMap {
            $0.resolve(cpus: topology.cpus.count, nodes: topology.nodeCount)
        }
        for t in counts where !(1...Limits.maxThreads).contains(t) {
            throw LabError.badValue(flag: "--threads", value: "\(t)", accepted: "thread counts in 1...\(Limits.maxThreads)")
        }
        let perCase = seconds / Double(counts.count)
        print("locklab validate: \(specs.count) lock(s) x \(workloads.count) workload(s) x threads \(counts.map(String.init).joined(separator: ",")), unpinned on \(nodes) node label(s), \(Torture.formatSeconds(seconds)) s per lock and workload, seed \(seed)")
        let header = ["lock", "workload", "thr", "runs", "operations", "checks", "verdict"]
        let lockWidth = max(4, specs.map(\.label.count).max() ?? 0)
        let workloadWidth = max(8, workloads.map(\.label.count).max() ?? 0)
        func line(_ c: [String]) -> String {
            let widths = [lockWidth, workloadWidth, 3, 5, 11, 41]
            return c.enumerated().map { i, cell in
                guard i < widths.count else { return cell }
                let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
                return (2...4).contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ")
        }
        print(line(header))
        var failures: [String] = []
        var passed = 0, skipped = 0
        for spec in specs {
            if ThreadSanitizer.isActive, let reason = ThreadSanitizer.blindSpot(spec.name) {
                print(line([spec.label, "-", "-", "-", "-", "-", "skipped: \(reason)"]))
                skipped += 1
                continue
            }
            for w in workloads {
                for t in counts {
                    let o = try Validator.validate(spec, workload: w, threads: t, nodes: min(nodes, t),
                                                   seconds: perCase, seed: seed, stallTimeoutSeconds: stallTimeout)
                    let verdict: String
                    switch o.verdict {
                    case .passed: verdict = "ok"; passed += 1
                    case .skipped(let why): verdict = "skipped: \(why)"; skipped += 1
                    case .failed(let why):
                        verdict = "FAILED"
                        failures.append("\(o.lock) on \(o.workload) at \(t) thread\(t == 1 ? "" : "s"): \(why)")
                    }
                    print(line([o.lock, o.workload, "\(t)", "\(o.runs)", "\(o.operations)", o.checks.joined(separator: ","), verdict]))
                    fflush(stdout)
                }
            }
        }
        print("validate: \(passed) passed, \(failures.count) failed, \(skipped) skipped")
        if !failures.isEmpty {
            for f in failures { FileHandle.standardError.write(Data("locklab validate: \(f)\n".utf8)) }
            throw ExitCode(1)
        }
    }
}
