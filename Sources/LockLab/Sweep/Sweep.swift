// The sweep: an experiment's matrix run into a results folder that survives interruption.
//
// - Runs go in a seeded random order, repeats outermost (RunMatrix.plannedRuns).
// - Each finished run is appended to runs.csv/threads.csv at once, flushed and fsynced.
// - Restarted on the same folder, it skips every run already recorded (by config_key) and runs only
//   the rest: no row lost, none duplicated. A torn last line or orphaned thread rows from a crash
//   are repaired when the folder is opened (ResultsWriter).
// - It refuses to mix a different machine, build or topology into a folder unless asked.
// - SIGINT/SIGTERM stop it after the current run; a second signal ends the process at once (the
//   rows written so far are already on disk).

import CShims
import Foundation

/// Set by SIGINT/SIGTERM; checked between runs.
public enum StopRequest {
    nonisolated(unsafe) static let flag: UnsafeMutablePointer<UInt32> = {
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        p.initialize(to: 0)
        return p
    }()

    /// Installs the handlers: the first signal asks for a stop; the handler then restores the
    /// default action so a second signal terminates.
    public static func install() {
        _ = flag
        let handler: @convention(c) (Int32) -> Void = { signo in
            cshims_u32_store_relaxed(StopRequest.flag, 1)
            signal(signo, SIG_DFL)
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        // A parent may have started us with these blocked (the mask is inherited): unblock them,
        // before any worker thread exists, so that every thread inherits the unblocked mask.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    public static var requested: Bool { cshims_u32_load_relaxed(flag) != 0 }

    /// For tests: ask for a stop as a signal would.
    public static func request() { cshims_u32_store_relaxed(flag, 1) }
    public static func reset() { cshims_u32_store_relaxed(flag, 0) }
}

/// A run hung and was recorded; the sweep must continue in a fresh process.
public struct SweepHung: Error, CustomStringConvertible {
    public let configKey: String
    public let remaining: Int
    public var description: String {
        "run \(configKey) hung (no progress for the stall timeout) and was recorded as hung; \(remaining) runs remain"
    }
}

public enum Sweep {
    /// Runs `experiment` on `topology` into `out`, resuming what is recorded there. Throws
    /// `SweepHung` after recording a hung run: the caller continues in a fresh process.
    public static func execute(experiment: Experiment, topology: Topology, out: String, allowMixing: Bool = false,
                               command: String, onEvent: (MatrixEvent) -> Void) throws -> MatrixOutcome {
        let matrix = try experiment.matrix(on: topology)
        let machine = MachineInfo.current()
        let build = BuildInfo.current()
        _ = try Manifest.record(in: out, machine: machine, build: build, topology: topology.summary,
                                latencySampling: RunMatrix.samplingNote(matrix.sampleEvery), command: command,
                                allowMixing: allowMixing)
        let writer = try ResultsWriter(directory: out)
        let outcome = try matrix.execute(topology: topology, writer: writer, machine: machine.host,
                                         gitCommit: build.gitCommit, resume: true, onEvent: onEvent)
        if let hung = outcome.hung { throw SweepHung(configKey: hung.configKey, remaining: hung.remaining) }
        return outcome
    }
}
