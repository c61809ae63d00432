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

    @Option(help: ArgumentHelp("Results folder (created if missing; resumed if it holds this experiment).", valueName: "DIR"))
    var out: String

    @Option(name: .customLong("virtual-nodes"), parsing: .unconditional, help: ArgumentHelp("Override the file's virtual_nodes.", valueName: "N"))
    var virtualNodes: Int?

    @Flag(help: "Run the report generator on DIR when the sweep completes.")
    var report = false

    @Flag(name: .customLong("allow-mixing"), help: "Append to a folder that holds another machine's, build's or topology's results.")
    var allowMixing = false

    @Flag(name: .customLong("replace-stale"), help: "If DIR holds another machine's, build's or topology's results, move them to DIR.stale-BUILDID and start afresh.")
    var replaceStale = false

    @Flag(name: .customLong("dry-run"), help: "Print the planned runs and exit.")
    var dryRun = false

    func run() throws {
        let experiment = try Experiment.load(path: file)
        let topology = try experiment.topology(virtualNodesOverride: virtualNodes)
        let matrix = try experiment.matrix(on: topology)
        for note in matrix.notes + matrix.limitNotes { print("note: \(note)") }
        if dryRun {
            for run in matrix.plannedRuns { print(matrix.configKey(run, topology: topology)) }
            let seconds = matrix.estimatedSeconds()
            print("\(plural(matrix.plannedRuns.count, "run")) planned on \(topology.summary); about \(formatDuration(seconds)) "
                  + "(each run: warm-up \(csvNumber(matrix.warmupSeconds)) s + \(csvNumber(matrix.durationSeconds)) s measured "
                  + "+ about 0.05 s to start; runs already in DIR are skipped)")
            return
        }
        try Manifest.refuseReferenceFolder(out)
        if replaceStale, let note = try Manifest.moveStaleAside(out, machine: MachineInfo.current(), build: BuildInfo.current(),
                                                                 topology: topology.summary) {
            print("note: \(note)")
        }
        StopRequest.install()
        let terminal = isatty(STDOUT_FILENO) != 0
        let command = CommandLine.arguments.joined(separator: " ")
        do {
            let outcome = try Sweep.execute(experiment: experiment, topology: topology, out: out,
                                        allowMixing: allowMixing, command: command) { event in
                Self.show(event, terminal: terminal)
            }
            if outcome.interrupted {
                print("stopped: \(outcome.ran) runs done this time; rerun the same command to resume")
                throw ExitCode(130)
            }
            let earlier = outcome.failedEarlier > 0 ? " (\(outcome.failedEarlier) of them hung or failed)" : ""
            print("sweep \(experiment.name): \(outcome.ran) runs done, \(outcome.skipped) already recorded\(earlier), \(outcome.failed) failed; results in \(out)")
            let failed = outcome.failed + outcome.failedEarlier
            if failed > 0 {
                throw LabError.impossible("\(plural(failed, "run")) hung or failed (see the status column of \(out)/runs.csv)")
            }
            if report { try ReportCommand.generate(directory: out, figures: experiment.figures) }
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
                              summary.opsPerSecond / 1e6, summary.status.rawValue, formatDuration(eta))
            if terminal {
                // One line that rewrites itself; a newline at the end.
                print("\r\u{1B}[K" + line, terminator: done == toRun ? "\n" : "")
                fflush(stdout)
            } else {
                print(line)
            }
        case let .interrupted(remaining):
            if terminal { print("") }
            print("interrupted: stopping after the current run; \(remaining) runs left")
        }
    }
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return "\(s / 3600)h\(String(format: "%02d", (s % 3600) / 60))m" }
    if s >= 60 { return "\(s / 60)m\(String(format: "%02d", s % 60))s" }
    return "\(s)s"
}
