// `locklab sweep FILE --out DIR`: run an experiment file's matrix, resumably.

import ArgumentParser
import Foundation
import LockLab

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run an experiment file's matrix into DIR; rerun the same command to resume.",
        discussion: """
            Runs go in a seeded random order, repeats outermost. Each finished run is appended to \
            DIR/runs.csv and DIR/threads.csv at once (fsynced). Restarted on the same DIR, the sweep \
            skips every run already recorded. Ctrl-C stops after the current run; a second Ctrl-C \
            stops at once. A hung run is recorded with status=hung and the sweep continues in a fresh \
            process. See Experiments/*.yaml for the file format.
            """)

    @Argument(help: ArgumentHelp("The experiment file (YAML).", valueName: "FILE"))
    var file: String

    @Option(help: ArgumentHelp("Results folder (created if missing; resumed if it holds this experiment); required unless --dry-run.", valueName: "DIR"))
    var out: String?

    @Option(name: .customLong("virtual-nodes"), parsing: .unconditional, help: ArgumentHelp("Override the file's virtual_nodes.", valueName: "N"))
    var virtualNodes: Int?

    @Flag(help: "Run the report generator on DIR when the sweep completes.")
    var report = false

    @Flag(name: .customLong("allow-mixing"), help: "Append to a folder that holds another machine's, build's or topology's results.")
    var allowMixing = false

    @Flag(name: .customLong("replace-stale"), help: "If DIR holds another machine's, build's or topology's results, move them to DIR.stale-BUILDID and start afresh.")
    var replaceStale = false

    @Flag(name: .customLong("dry-run"), help: "Print the planned runs and exit (with --shards N: each shard's runs).")
    var dryRun = false

    @Option(help: ArgumentHelp("Run only shard I of N (1-based) into DIR/shards/I/: whole curves (one lock, workload and placement over all its thread counts and repeats), cut deterministically and balanced by expected run time. `locklab merge DIR` gathers the shards.", valueName: "I/N"))
    var shard: String?

    @Option(help: ArgumentHelp("With --dry-run: print how the matrix is cut into N shards.", valueName: "N"))
    var shards: Int?

    func run() throws {
        let selector = try shard.map { try ShardSelector(parsing: $0) }
        if let shards {
            if selector != nil { throw LabError.badValue(flag: "--shards", value: "\(shards)", accepted: "either --shard I/N or --shards N with --dry-run, not both") }
            if !dryRun { throw LabError.badValue(flag: "--shards", value: "\(shards)", accepted: "only with --dry-run (to run one shard: --shard I/N)") }
            _ = try ShardSelector(index: 1, count: shards)
        }
        let experiment = try Experiment.load(path: file)
        let topology = try experiment.topology(virtualNodesOverride: virtualNodes)
        let matrix = try experiment.matrix(on: topology)
        for note in matrix.notes + matrix.limitNotes + matrix.pairingNotes { print("note: \(note)") }
        if dryRun {
            if let n = shards ?? selector?.count {
                let cut = ShardCut(matrix: matrix, shards: n)
                for i in 1...n where selector == nil || selector?.index == i {
                    let mine = matrix.restricted(to: try ShardSelector(index: i, count: n), of: cut)
                    let runs = mine.plannedRuns
                    print("shard \(i)/\(n): \(plural(cut.curves(of: i).count, "curve")), \(plural(runs.count, "run")), about \(DurationText.format(cut.expectedSeconds(of: i)))")
                    for run in runs { print("  " + mine.configKey(run, topology: topology)) }
                }
                print("\(plural(matrix.plannedRuns.count, "run")) in \(plural(cut.curves.count, "curve")) planned on \(topology.summary); cut \(cut.fingerprint)")
                return
            }
            for run in matrix.plannedRuns { print(matrix.configKey(run, topology: topology)) }
            let seconds = matrix.estimatedSeconds()
            print("\(plural(matrix.plannedRuns.count, "run")) planned on \(topology.summary); about \(DurationText.format(seconds)) "
                  + "(each run: warm-up \(csvNumber(matrix.warmupSeconds)) s + \(csvNumber(matrix.durationSeconds)) s measured "
                  + "+ about 0.05 s to start; runs already in DIR are skipped)")
            return
        }
        guard let out = self.out else {
            throw LabError.badValue(flag: "--out", value: "", accepted: "a results folder (required unless --dry-run)")
        }
        let resultsDirectory = selector.map { $0.directory(in: out) } ?? out
        try Manifest.refuseReferenceFolder(resultsDirectory)
        if replaceStale, let note = try Manifest.moveStaleAside(resultsDirectory, machine: MachineInfo.current(),
                                                                 build: BuildInfo.current(), topology: topology.summary) {
            print("note: \(note)")
        }
        for note in ClockFacts.current.notes { print("note: \(note)") }
        StopRequest.install()
        let terminal = isatty(STDOUT_FILENO) != 0
        let command = CommandLine.arguments.joined(separator: " ")
        do {
            let outcome = try Sweep.execute(experiment: experiment, topology: topology, out: out, shard: selector,
                                        allowMixing: allowMixing, command: command) { event in
                Self.show(event, terminal: terminal)
            }
            if outcome.interrupted {
                print("stopped: \(outcome.ran) runs done this time; rerun the same command to resume")
                throw ExitCode(130)
            }
            let earlier = outcome.failedEarlier > 0 ? " (\(outcome.failedEarlier) of them hung or failed)" : ""
            let part = selector.map { " shard \($0)" } ?? ""
            print("sweep \(experiment.name)\(part): \(outcome.ran) runs done, \(outcome.skipped) already recorded\(earlier), \(outcome.failed) failed; results in \(resultsDirectory)")
            let failed = outcome.failed + outcome.failedEarlier
            if failed > 0 {
                throw LabError.impossible("\(plural(failed, "run")) hung or failed (see the status column of \(resultsDirectory)/runs.csv)")
            }
            if report {
                if selector != nil {
                    print("note: a shard is not reported on its own; `locklab merge \(out) --report` when every shard has finished")
                } else {
                    try ReportCommand.generate(directory: out, arguments: ReportCommand.arguments(for: experiment))
                }
            }
        } catch let hung as SweepHung {
            FileHandle.standardError.write(Data("locklab: \(hung.description); continuing in a fresh process\n".utf8))
            fflush(stdout)
            Self.restartSelf()
        }
    }

    /// Replaces this process with the same command line: the sweep resumes after the hung run.
    static func restartSelf() -> Never {
        let args = CommandLine.arguments
        var cArgs = args.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &cArgs)
        FileHandle.standardError.write(Data("locklab: error: cannot restart (errno \(errno)); rerun the same command to resume\n".utf8))
        Foundation.exit(3)
    }

    static func show(_ event: MatrixEvent, terminal: Bool) {
        switch event {
        case let .started(total, recorded, toRun):
            print("\(plural(total, "run")) planned, \(recorded) already recorded, \(toRun) to run")
        case let .finished(done, toRun, run, summary, eta):
            let what = run.workload.kind == .micro
                ? "cl=\(run.workload.csLines ?? 1) cs=\(run.workload.csNanoseconds ?? 0)" : run.workload.label
            let line = String(format: "[%d/%d] %@ t=%d %@ %@ ncs=%d r%d: %.3f Mops/s %@ (ETA %@)",
                              done, toRun, run.spec.label, run.threads, run.placement.description, what,
                              run.workload.ncsNanoseconds, run.repeatIndex,
                              summary.opsPerSecond / 1e6, summary.status.rawValue, DurationText.format(eta))
            if terminal {
                // One line that rewrites itself; a newline at the end.
                print("\r\u{1B}[K" + line, terminator: done == toRun ? "\n" : "")
                fflush(stdout)
            } else {
                print(line)
            }
        case let .note(note):
            if terminal { print("") }
            print("note: \(note)")
        case let .interrupted(remaining):
            if terminal { print("") }
            print("interrupted: stopping after the current run; \(remaining) runs left")
        }
    }
}
