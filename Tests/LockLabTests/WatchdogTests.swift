// The watchdog: a run (or a torture) that makes no progress for the stall timeout is stopped and
// reported as hung, its threads abandoned; a sweep records such a run with status=hung and its
// configuration, and goes on in a fresh process with the rest.
//
// In-process, a test-only lock that never grants thread 1 until the test opens its gate makes the
// hang; the gate is opened afterwards so the abandoned thread leaves instead of waiting forever
// (it costs no CPU meanwhile: it sleeps in 1 ms steps). End to end, a real `locklab sweep` is
// started with LOCKLAB_FAULT_HANG=ticket (Harness.faultHangLock), which makes every ticket run hang.
// Serialized: both in-process tests share the gate.

import CShims
import Foundation
import Testing
@testable import LockLab

/// A TAS lock that never grants thread 1 (ThreadSlot.index == 1) while `gate` is closed.
struct NeverGrantsSecondThread: LockAlgorithm {
    struct Context {
        let index: Int
    }

    static let descriptor = LockDescriptor(name: "never-grants-thread-1", family: .harness, waiting: .spin,
                                           paper: "test only", supportsTryLock: false)

    /// 0 closed: thread 1 waits in lock(). Tests open it (1) once the run has been declared hung.
    nonisolated(unsafe) static let gate: UnsafeMutablePointer<UInt32> = {
        let p = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        p.initialize(to: 0)
        return p
    }()

    static func closeGate() { cshims_u32_store_release(gate, 0) }
    static func openGate() { cshims_u32_store_release(gate, 1) }

    let word: UnsafeMutablePointer<UInt32>

    init(_ environment: LockEnvironment) {
        word = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        word.initialize(to: 0)
    }

    func makeContext(for thread: ThreadSlot) -> Context { Context(index: thread.index) }

    func lock(_ context: inout Context) {
        if context.index == 1 {
            while cshims_u32_load_acquire(Self.gate) == 0 { usleep(1000) }
        }
        while cshims_u32_exchange_acquire(word, 1) != 0 { cshims_pause() }
    }

    func unlock(_ context: inout Context) { cshims_u32_store_release(word, 0) }

    // Abandoned threads may still touch the word after a hung run: it is never freed.
    func deallocate() {}
}

@Suite("Watchdog", .serialized)
struct WatchdogTests {
    @Test func testRunThatNeverGrantsTheSecondThreadIsDeclaredHungAfterTheStallTimeout() throws {
        NeverGrantsSecondThread.closeGate()
        defer { NeverGrantsSecondThread.openGate() }
        let config = RunConfig(
            spec: try LockSpec(parsing: "no-lock"),
            threads: (0..<2).map { ThreadSlot(index: $0, cpu: nil, node: 0) },
            length: .timed(warmupSeconds: 0, measureSeconds: 0.2), sampleEvery: 0, stallTimeoutSeconds: 1)
        let started = Date()
        let result = try Harness.measure(NeverGrantsSecondThread.self, workload: Microbenchmark(.init(), memory: LabMemory()),
                                     config: config)
        let seconds = Date().timeIntervalSince(started)
        #expect(result.status == .hung)
        // 0.2 s measured, then 1 s without progress: well under the 30 s default timeout.
        #expect(seconds >= 1.0 && seconds < 10, "declared hung after \(seconds) s")
        #expect(RunSummary(result).status == .hung)
    }

    @Test func testTortureReportsAThreadStuckInTheLockAsHung() throws {
        NeverGrantsSecondThread.closeGate()
        defer { NeverGrantsSecondThread.openGate() }
        let config = TortureConfig(spec: try LockSpec(parsing: "no-lock"), threads: 2, durationSeconds: 0.3,
                                   stallTimeoutSeconds: 1)
        let result = try Torture.run(NeverGrantsSecondThread.self, config: config)
        guard case let .hung(what) = result.verdict else {
            Issue.record("expected a hang, got \(result.verdict)")
            return
        }
        #expect(what.contains("1 of 2 threads stuck"), "\(what)")
        #expect(result.lock == "never-grants-thread-1")
    }
}

@Suite("Sweep with a hung run", .serialized)
struct SweepHangTests {
    static let experiment = """
        name: hang
        locks: [tas, ticket]
        threads: [1, 2]
        repeats: 2
        duration_s: 0.05
        warmup_s: 0.01
        stall_timeout_s: 1
        seed: 9
        """

    @Test func testHungRunIsRecordedWithItsConfigurationAndTheSweepCompletesTheRest() throws {
        let file = try writeFile(Self.experiment, name: "hang.yaml")
        let dir = temporaryDirectory("hang")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try locklab(["sweep", file, "--out", dir], environment: ["LOCKLAB_FAULT_HANG": "ticket"])

        // Every planned run is recorded exactly once: tas ok, ticket hung.
        let topology = try Topology.load()
        let settings = try Experiment.parse(Self.experiment, file: "hang.yaml").matrix(on: topology)
        let planned = Set(settings.plannedRuns.map { settings.configKey($0, topology: topology) })
        let rows = try readCSV(path: dir + "/runs.csv").rows
        #expect(rows.count == planned.count, "\(rows.count) rows for \(planned.count) planned runs")
        #expect(Set(rows.map { $0["config_key"]! }) == planned)
        for row in rows {
            let expected = row["lock"] == "ticket" ? "hung" : "ok"
            #expect(row["status"] == expected, "\(row["config_key"]!): \(row["status"]!)")
            // The configuration is recorded with the hung run.
            #expect(["1", "2"].contains(row["threads"]!))
            #expect(row["placement"] == "compact" && row["duration_s"] == "0.05" && row["experiment"] == "hang")
        }
        #expect(rows.filter { $0["status"] == "hung" }.count == 4)
        // A hung run has no thread rows; the others have one per thread.
        let threadRows = try readCSV(path: dir + "/threads.csv").rows
        let okThreads = rows.filter { $0["status"] == "ok" }.reduce(0) { $0 + Int($1["threads"]!)! }
        #expect(threadRows.count == okThreads)

        // Each hang restarted the process; the last one reports the hung runs and exits 2.
        #expect(result.stderr.components(separatedBy: "continuing in a fresh process").count - 1 == 4, "\(result.stderr)")
        #expect(result.status == 2)
        #expect(result.stderr.contains("4 runs hung or failed"), "\(result.stderr)")
        #expect(result.stdout.contains("(4 of them hung or failed)"), "\(result.stdout)")
    }

    @Test func testWithoutTheFaultTheSameSweepIsAllOK() throws {
        let file = try writeFile(Self.experiment, name: "hang.yaml")
        let dir = temporaryDirectory("nohang")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try locklab(["sweep", file, "--out", dir])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try readCSV(path: dir + "/runs.csv").rows.allSatisfy { $0["status"] == "ok" })
    }
}
