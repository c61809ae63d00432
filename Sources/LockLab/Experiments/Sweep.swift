// The sweep: an experiment's matrix run into a results folder that survives interruption.
//
// - Runs go in a seeded random order, repeats outermost (SessionSettings.plannedRuns).
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

public enum SweepEvent {
    /// Before the first run: runs planned in all, already recorded, to run now.
    case started(total: Int, alreadyRecorded: Int, toRun: Int)
    /// A run finished and was written.
    case finished(done: Int, toRun: Int, run: SessionSettings.PlannedRun, summary: RunSummary, etaSeconds: Double)
    /// Stopped on request after a run; `remaining` runs are left for a resume.
    case interrupted(remaining: Int)
}

public struct SweepOutcome: Sendable {
    public var planned: Int
    public var skipped: Int
    public var ran: Int
    /// Runs of this process whose status is not ok (hung, mutex-violation).
    public var failed: Int
    /// Runs already recorded when this process started whose status is not ok: after a hang the
    /// sweep continues in a fresh process, which must still report the hung run.
    public var failedEarlier: Int
    public var interrupted: Bool
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
    public static func run(experiment: Experiment, topology: Topology, out: String, allowMixing: Bool = false,
                           command: String, onEvent: (SweepEvent) -> Void) throws -> SweepOutcome {
        let settings = try experiment.settings(on: topology)
        let machine = MachineInfo.current()
        let build = BuildInfo.current()
        _ = try Manifest.record(in: out, machine: machine, build: build, topology: topology.summary,
                                latencySampling: Session.samplingNote(settings.sampleEvery), command: command,
                                allowMixing: allowMixing)
        let writer = try ResultsWriter(directory: out)
        let recorded = writer.recordedConfigKeys
        let planned = settings.plannedRuns
        let todo = planned.filter { !recorded.contains(settings.configKey($0, topology: topology)) }
        let plannedKeys = Set(planned.map { settings.configKey($0, topology: topology) })
        let failedEarlier = writer.existingRows.filter {
            plannedKeys.contains($0["config_key"] ?? "") && $0["status"] != RunStatus.ok.rawValue
        }.count
        onEvent(.started(total: planned.count, alreadyRecorded: planned.count - todo.count, toRun: todo.count))

        var outcome = SweepOutcome(planned: planned.count, skipped: planned.count - todo.count, ran: 0, failed: 0,
                                   failedEarlier: failedEarlier, interrupted: false)
        let started = Date()
        for (i, run) in todo.enumerated() {
            if StopRequest.requested {
                outcome.interrupted = true
                onEvent(.interrupted(remaining: todo.count - i))
                break
            }
            let (description, summary) = try Session.execute(
                run, settings: settings, topology: topology, runID: writer.nextRunID(),
                machine: machine.host, gitCommit: build.gitCommit)
            try writer.append(description, summary)
            outcome.ran += 1
            if summary.status != .ok { outcome.failed += 1 }
            let perRun = Date().timeIntervalSince(started) / Double(i + 1)
            onEvent(.finished(done: i + 1, toRun: todo.count, run: run, summary: summary,
                              etaSeconds: perRun * Double(todo.count - i - 1)))
            if summary.status == .hung {
                // Its threads still spin: measuring more in this process would measure them too.
                // The caller starts a fresh process, which resumes after the recorded hung run.
                throw SweepHung(configKey: description.configKey, remaining: todo.count - i - 1)
            }
        }
        return outcome
    }
}
