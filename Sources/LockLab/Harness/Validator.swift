// The validator as a tool (`locklab validate`): the checks the test suite runs on every lock, for any
// lock or executor of the catalog on any workload, at any thread count, within a time budget.
//
// Each run is a logged `.iterations` run of the harness (Runner.swift), so every check it makes
// applies: the plain counter must equal the updates; the workload's invariants hold at the end;
// the logged operations, replayed in application order on the sequential model, give the results
// the executor returned (model replay); every client received exactly the results of its own
// operations (responses check: catches an executor that misroutes a result); a reader-sharing
// executor's reads each saw no update beside them (the version word) and returned what some state
// between the update numbers they saw before and after returns (reads check). Threads are unpinned,
// so that preemption interleaves them, with node labels i mod `nodes`; trylock every third
// acquisition where the lock offers it. Runs repeat with seeds `seed`, `seed + 1`, ... and double
// their length while the budget allows (at most `maxPerThread` operations a thread: the log stays
// in memory), so a longer budget checks more and longer interleavings.

import Foundation

/// One (lock, workload, thread count) case of `locklab validate`.
public struct ValidationOutcome: Sendable {
    public enum Verdict: Sendable, Equatable {
        case passed
        /// A check failed: the run's status and the failure, with the seed that gave it.
        case failed(String)
        /// Not run, and why (a refused pairing, a thread count the lock does not support).
        case skipped(String)
    }
    public let lock: String
    public let workload: String
    public let threads: Int
    /// Runs made and operations checked, over all of them.
    public let runs: Int
    public let operations: UInt64
    /// The checks that applied (counter, invariants, model, responses, reads).
    public let checks: [String]
    public let seconds: Double
    public let verdict: Verdict
}

public enum Validator {
    /// Most operations a thread makes in one run (the operation log is 24-32 bytes an operation).
    public static let maxPerThread = 65_536
    /// Operations a thread makes in a case's first run.
    public static let firstPerThread = 200

    /// Validates `spec` on `workload` at `threads` client threads (plus the executor's servers)
    /// for about `seconds` (at least one run). Throws only what making a run throws (a lock that
    /// refuses its options: `LockError`); every check's failure is a `.failed` verdict.
    /// `entry` overrides the spec's catalog entry (a test's deliberately broken lock).
    public static func validate(_ spec: LockSpec, entry: LockEntry? = nil, workload: WorkloadSpec, threads: Int, nodes: Int,
                                seconds: Double, seed: UInt64, stallTimeoutSeconds: Double = 60) throws -> ValidationOutcome {
        let entry = entry ?? spec.entry
        let descriptor = entry.descriptor
        func outcome(_ runs: Int, _ ops: UInt64, _ checks: [String], _ s: Double, _ v: ValidationOutcome.Verdict) -> ValidationOutcome {
            ValidationOutcome(lock: spec.label, workload: workload.label, threads: threads, runs: runs, operations: ops,
                              checks: checks, seconds: s, verdict: v)
        }
        if let refusal = workload.pairingRefusal(spec) { return outcome(0, 0, [], 0, .skipped(refusal)) }
        if let max = descriptor.maxThreads, threads > max {
            return outcome(0, 0, [], 0, .skipped("\(descriptor.name) runs at most \(max) thread\(max == 1 ? "" : "s")"))
        }
        var checks = ["counter", "invariants", "responses"]
        if workload.kind != .micro { checks.insert("model", at: 2) }
        if entry.readSharing != .exclusive && workload.issuesReads { checks.append("reads") }

        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
        var perThread = firstPerThread
        var runs = 0
        var operations: UInt64 = 0
        repeat {
            let runSeed = seed &+ UInt64(runs)
            let config = RunConfig(
                spec: spec, threads: (0..<threads).map { ThreadSlot(index: $0, cpu: nil, node: $0 % nodes) },
                nodeCount: nodes, length: .iterations(perThread: perThread), sampleEvery: 7,
                trylockEvery: descriptor.supportsTryLock ? 3 : 0, seed: runSeed, stallTimeoutSeconds: stallTimeoutSeconds,
                helpers: (0..<descriptor.helperThreads).map { ThreadSlot(index: threads + $0, cpu: nil, node: 0) },
                logOperations: true)
            let before = elapsed()
            let result = try entry.run(config, workload)
            runs += 1
            operations += UInt64(threads * perThread)
            if result.status != .ok {
                return outcome(runs, operations, checks, elapsed(),
                               .failed("\(result.status.rawValue): \(result.failure ?? "counter \(result.counter)") (seed \(runSeed), \(perThread) operations a thread)"))
            }
            if let short = result.threads.first(where: { $0.totalOps != UInt64(perThread) }) {
                return outcome(runs, operations, checks, elapsed(),
                               .failed("thread \(short.thread.index) made \(short.totalOps) of \(perThread) operations (seed \(runSeed))"))
            }
            let took = elapsed() - before
            if took * 4 < seconds - elapsed() { perThread = min(perThread * 2, maxPerThread) }
        } while elapsed() < seconds
        return outcome(runs, operations, checks, elapsed(), .passed)
    }
}
