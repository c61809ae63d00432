// `locklab torture --lock L --seconds S`: lock torture (see Sources/LockLab/Harness/Torture.swift).
// Prints one row per lock; a failure is also one line on stderr naming the lock and what was
// violated, and the command exits 1 (bad input exits 2, as everywhere).

import ArgumentParser
import Foundation
import LockLab

struct TortureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "torture",
        abstract: "Torture locks: unpinned threads, random lock/trylock/withLock, holds that sleep while holding.",
        discussion: """
            In the spirit of Linux's locktorture. Unpinned threads (default: twice the CPUs) take the \
            lock by a random mix of its entry points (a single tryLock where offered; withLock only for \
            locks without separate lock and unlock), hold it for random times (now and then yielding or \
            sleeping with the lock held, so holders are preempted) and wait random gaps between \
            acquisitions. An owner word checked on entry and exit catches two threads inside at once \
            the moment it happens; a plain counter must equal the acquisitions at the end; no \
            acquisition for --stall-timeout seconds is a hang. Thread i is on node i mod --nodes (a \
            label for NUMA-aware locks; nothing is pinned). Exit status: 0 every lock passed, 1 a lock \
            failed (one line on stderr per failure), 2 bad input.
            """)

    // Number options parse `.unconditional`: a value starting with '-' is taken as the value, so
    // that `--seconds -1` is told what is accepted instead of "missing value".
    @Option(help: ArgumentHelp("Comma-separated locks, each NAME[:KEY=VALUE...]; 'all' is every registered lock and delegation executor (an RCU flavour named is skipped: not a lock).", valueName: "locks"))
    var lock: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds of torture per lock.", valueName: "s"))
    var seconds: Double = 5

    @Option(parsing: .unconditional, help: ArgumentHelp("Threads, unpinned (default: twice the CPUs).", valueName: "N"))
    var threads: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Node labels the threads are spread over (thread i on node i mod N).", valueName: "N"))
    var nodes: Int = 2

    @Option(parsing: .unconditional, help: ArgumentHelp("Seed of the random mix.", valueName: "n"))
    var seed: UInt64 = 1

    @Option(name: .customLong("stall-timeout"), parsing: .unconditional,
            help: ArgumentHelp("A lock with no acquisition for this many seconds has hung.", valueName: "s"))
    var stallTimeout: Double = 10

    func run() throws {
        guard seconds.isFinite, seconds > 0, seconds <= 86_400 else {
            throw LabError.badValue(flag: "--seconds", value: "\(seconds)", accepted: "seconds in (0, 86400]")
        }
        guard stallTimeout.isFinite, stallTimeout >= 0.1, stallTimeout <= 86_400 else {
            throw LabError.badValue(flag: "--stall-timeout", value: "\(stallTimeout)", accepted: "seconds in [0.1, 86400]")
        }
        // Twice the CPUs this process may use (its affinity mask and cpuset).
        let threadCount = try threads ?? 2 * Topology.load().cpus.count
        guard (1...Limits.maxThreads).contains(threadCount) else {
            throw LabError.badValue(flag: "--threads", value: "\(threadCount)", accepted: "a thread count in 1...\(Limits.maxThreads)")
        }
        guard (1...threadCount).contains(nodes) else {
            throw LabError.badValue(flag: "--nodes", value: "\(nodes)", accepted: "a node count in 1...\(threadCount) (at most the threads)")
        }
        let specs = try LockSpec.parseList(lock)

        print("locklab torture: \(plural(specs.count, "lock")), \(plural(threadCount, "thread")) unpinned on \(plural(nodes, "node")) (labels), \(Torture.formatSeconds(seconds)) s each, seed \(seed)")
        let header = ["lock", "thr", "acquisitions", "per s", "trylock ok", "trylock tried", "withLock", "slept holding",
                      "yielded holding", "min/thread", "max/thread", "verdict"]
        // Rows are printed as each lock finishes: widths fixed up front (labels, then 10 digits).
        let widths = header.indices.map { i in max(header[i].count, i == 0 ? specs.map(\.label.count).max() ?? 0 : 10) }
        func line(_ cells: [String]) -> String {
            cells.indices.map { i in
                let pad = String(repeating: " ", count: max(0, widths[i] - cells[i].count))
                return i == 0 || i == cells.count - 1 ? cells[i] + pad : pad + cells[i]
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        print(line(header))
        var failures: [String] = []
        var skipped = 0
        var rcuSkipped = 0
        for spec in specs {
            // A ThreadSanitizer build (make test-tsan) skips what TSan cannot see (it would report
            // false races): see Sources/LockLab/Platform/ThreadSanitizer.swift.
            if ThreadSanitizer.isActive, let reason = ThreadSanitizer.blindSpot(spec.name) {
                print("note: \(spec.label) skipped under ThreadSanitizer: \(reason)")
                skipped += 1
                continue
            }
            // An RCU flavour is not a lock: its updates serialise on a catalog lock (tortured under
            // its own name), its reads and grace periods are checked by `validate` on the twins.
            if spec.entry.isRCU {
                print("note: \(spec.label) skipped: RCU is not a lock (its writer lock is tortured as itself; `locklab validate --lock \(spec.name) --workload snapshot` checks its reads and grace periods)")
                rcuSkipped += 1
                continue
            }
            let config = TortureConfig(spec: spec, threads: threadCount, nodeCount: nodes, durationSeconds: seconds,
                                       seed: seed, stallTimeoutSeconds: stallTimeout)
            let result = try spec.entry.torture(config)
            let perSecond = result.elapsedSeconds > 0 ? Double(result.acquisitions) / result.elapsedSeconds : 0
            let cells = [
                spec.label, "\(result.threads)", "\(result.acquisitions)", String(format: "%.0f", perSecond),
                "\(result.trylockSuccesses)", "\(result.trylockAttempts)", "\(result.withLockCalls)",
                "\(result.sleepsHolding)", "\(result.yieldsHolding)",
                "\(result.minThreadAcquisitions)", "\(result.maxThreadAcquisitions)",
                result.verdict.passed ? "ok" : "FAILED",
            ]
            print(line(cells))
            fflush(stdout)
            if !result.verdict.passed {
                let line = "\(spec.label): \(result.verdict.message)"
                failures.append(line)
                FileHandle.standardError.write(Data("locklab: torture: \(line)\n".utf8))
            }
            if result.threads < threadCount {
                print("note: \(spec.label) supports at most \(plural(result.threads, "thread")): tortured with that many")
            }
        }
        if failures.isEmpty {
            print("torture: every lock passed" + (skipped > 0 ? " (\(skipped) skipped under ThreadSanitizer)" : "")
                  + (rcuSkipped > 0 ? " (\(rcuSkipped) RCU flavours skipped: not locks)" : ""))
        } else {
            print("torture: \(plural(failures.count, "lock")) FAILED")
            throw ExitCode(1)
        }
    }
}
