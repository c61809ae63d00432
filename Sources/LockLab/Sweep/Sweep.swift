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
    /// Runs `experiment` on `topology` into `out`, resuming what is recorded there. With `shard`,
    /// runs only that shard's curves, into `out`/shards/I/ with its plan (shard.json). Throws
    /// `SweepHung` after recording a hung run: the caller continues in a fresh process.
    public static func execute(experiment: Experiment, topology: Topology, out: String, shard: ShardSelector? = nil,
                               allowMixing: Bool = false, command: String,
                               onEvent: (MatrixEvent) -> Void) throws -> MatrixOutcome {
        var matrix = try experiment.matrix(on: topology)
        var directory = out
        if let shard {
            directory = shard.directory(in: out)
            let plan = try Self.plan(experiment: experiment, matrix: matrix, topology: topology, shard: shard)
            if let recorded = try ShardPlan.read(in: directory),
               recorded.cutFingerprint != plan.cutFingerprint || recorded.shards != plan.shards
                || recorded.shard != plan.shard || recorded.fileDigest != plan.fileDigest {
                throw LabError.impossible("\(directory) holds shard \(recorded.shard)/\(recorded.shards) of another cut (\(recorded.file), cut \(recorded.cutFingerprint)), not shard \(shard) of \(experiment.file) (cut \(plan.cutFingerprint)); use a new output folder")
            }
            matrix = matrix.restricted(to: shard, of: ShardCut(matrix: matrix, shards: shard.count))
            // The plan before the folder's first row: merge knows what a complete shard holds.
            try Manifest.createFolder(directory)
            try plan.write(in: directory)
        }
        let machine = MachineInfo.current()
        let build = BuildInfo.current()
        _ = try Manifest.record(in: directory, machine: machine, build: build, topology: topology.summary,
                                latencySampling: RunMatrix.samplingNote(matrix.sampleEvery), command: command,
                                allowMixing: allowMixing)
        let writer = try ResultsWriter(directory: directory)
        let outcome = try matrix.execute(topology: topology, writer: writer, machine: machine.host,
                                         gitCommit: build.gitCommit, resume: true, onEvent: onEvent)
        if let hung = outcome.hung { throw SweepHung(configKey: hung.configKey, remaining: hung.remaining) }
        return outcome
    }

    /// Shard `shard`'s plan of `experiment` on `topology`: its curves and every run they hold.
    public static func plan(experiment: Experiment, matrix: RunMatrix, topology: Topology,
                            shard: ShardSelector) throws -> ShardPlan {
        let cut = ShardCut(matrix: matrix, shards: shard.count)
        let mine = matrix.restricted(to: shard, of: cut)
        return ShardPlan(experiment: experiment.name, file: experiment.file,
                         fileDigest: ShardPlan.digest(ofFile: experiment.file), shard: shard.index,
                         shards: shard.count, cutFingerprint: cut.fingerprint, figures: experiment.figures,
                         curves: cut.curves(of: shard.index).map(\.key),
                         planned: mine.plannedRuns.map { mine.configKey($0, topology: topology) },
                         expectedSeconds: cut.expectedSeconds(of: shard.index))
    }
}
