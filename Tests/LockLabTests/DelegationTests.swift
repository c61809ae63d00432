// The delegation executors (Sources/LockLab/Executors/): the generic validator and torture run
// them like every lock (MutualExclusionTests, TortureTests); here, what is particular to
// delegation: the checks catch a broken executor (two servers applying at once without exclusion,
// a response lost), a server that stops serving is a hung run, and the combining degree, the
// server's CPU and the server thread's CPU time reach the results.

import CShims
import Foundation
import Testing
@testable import LockLab

/// Broken on purpose: two server threads sweep the clients' request lines and each claims a
/// request with a CAS, so every request is applied exactly once and answered correctly, but the
/// two servers apply at the same time: no exclusion between them. To make the overlap near certain
/// even on a loaded machine, a server that has claimed a request waits (at most ~5000 pauses) for
/// the other server to claim one too, so that both apply at once whenever both are on a CPU.
struct UnexcludedServers: Executor {
    struct Context { let line: UnsafeMutableRawPointer }
    static let descriptor = LockDescriptor(name: "unexcluded-servers", family: .harness, waiting: .spin,
                                           paper: "test only", supportsTryLock: false, helperThreads: 2)
    /// Line: operation (24 bytes), result at 24, state at 32 (0 free, 1 pending, 2 claimed).
    let lines: UnsafeMutableRawPointer
    let clients: Int
    let departed: UnsafeMutablePointer<UInt64>
    /// Claims so far, both servers together: an even ticket waits for the odd one after it.
    let claims: UnsafeMutablePointer<UInt64>
    init(_ environment: ExecutorEnvironment) {
        clients = environment.clientThreads
        lines = LabMemory().allocate(bytes: clients * 128)
        lines.initializeMemory(as: UInt8.self, repeating: 0, count: clients * 128)
        departed = .allocate(capacity: 1)
        departed.initialize(to: 0)
        claims = .allocate(capacity: 1)
        claims.initialize(to: 0)
    }
    func makeContext(for thread: ThreadSlot) -> Context { Context(line: lines + thread.index * 128) }
    func freeContext(_ context: inout Context) { _ = cshims_u64_fetch_add_acq_rel(departed, 1) }
    func execute<T: OperationTarget>(_ op: LockLab.Operation, on target: T, _ context: inout Context) -> UInt64 {
        context.line.assumingMemoryBound(to: LockLab.Operation.self).pointee = op
        let state = (context.line + 32).assumingMemoryBound(to: UInt64.self)
        cshims_u64_store_release(state, 1)
        while cshims_u64_load_acquire(state) != 0 { sched_yield() }
        return (context.line + 24).assumingMemoryBound(to: UInt64.self).pointee
    }
    func serve<T: OperationTarget>(helper: ThreadSlot, target: T, control: GroupControl) {
        if control.arriveAndWait() == GroupPhase.abort { return }
        var served: UInt64 = 0
        while control.currentPhase() != GroupPhase.stop || cshims_u64_load_acquire(departed) < UInt64(clients) {
            for c in 0..<clients {
                let line = lines + c * 128
                let state = (line + 32).assumingMemoryBound(to: UInt64.self)
                if cshims_u64_cas_value_acq_rel(state, 1, 2) {
                    let ticket = cshims_u64_fetch_add_acq_rel(claims, 1)
                    if ticket % 2 == 0 {
                        var spins = 5_000
                        while spins > 0 && cshims_u64_load_acquire(claims) == ticket + 1 { spins -= 1; cshims_pause() }
                    }
                    (line + 24).assumingMemoryBound(to: UInt64.self).pointee = target.apply(line.assumingMemoryBound(to: LockLab.Operation.self).pointee)
                    cshims_u64_store_release(state, 0)
                    served += 1
                    cshims_u64_store_relaxed(control.progress(helper.index), served)
                }
            }
        }
    }
    func deallocate() {
        LabMemory().deallocate(lines, bytes: clients * 128)
        departed.deallocate()
        claims.deallocate()
    }
}

/// Broken on purpose: exclusion is right (a test-and-set lock), but every 16th operation of a
/// thread gets back the result of its previous one: a response lost and a stale one returned.
struct LosesResponses: Executor {
    struct Context { var last: UInt64; var count: UInt64 }
    static let descriptor = LockDescriptor(name: "loses-responses", family: .harness, waiting: .spin,
                                           paper: "test only", supportsTryLock: false)
    let word: UnsafeMutablePointer<UInt32>
    init(_ environment: ExecutorEnvironment) {
        word = LabMemory().allocate(bytes: 128).bindMemory(to: UInt32.self, capacity: 1)
        word.initialize(to: 0)
    }
    func makeContext(for thread: ThreadSlot) -> Context { Context(last: 0, count: 0) }
    func execute<T: OperationTarget>(_ op: LockLab.Operation, on target: T, _ context: inout Context) -> UInt64 {
        while cshims_u32_exchange_acquire(word, 1) != 0 { sched_yield() }
        let result = target.apply(op)
        cshims_u32_store_release(word, 0)
        context.count += 1
        defer { context.last = result }
        return context.count % 16 == 0 ? context.last : result
    }
    func deallocate() { LabMemory().deallocate(UnsafeMutableRawPointer(word), bytes: 128) }
}

/// Broken on purpose: its server arrives at the barrier and never serves until `release` is set
/// (the test sets it once the run was declared hung, so that no thread spins on after the test).
struct SilentServer: Executor {
    static let descriptor = LockDescriptor(name: "silent-server", family: .harness, waiting: .spin,
                                           paper: "test only", supportsTryLock: false, helperThreads: 1)
    nonisolated(unsafe) static let release = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
    let inner: RCLExecutor
    init(_ environment: ExecutorEnvironment) throws {
        inner = RCLExecutor(ExecutorEnvironment(clientThreads: environment.clientThreads, nodeCount: 1, options: LockOptions()))
    }
    func makeContext(for thread: ThreadSlot) -> RCLExecutor.Context { inner.makeContext(for: thread) }
    func freeContext(_ context: inout RCLExecutor.Context) { inner.freeContext(&context) }
    func execute<T: OperationTarget>(_ op: LockLab.Operation, on target: T, _ context: inout RCLExecutor.Context) -> UInt64 {
        inner.execute(op, on: target, &context)
    }
    func serve<T: OperationTarget>(helper: ThreadSlot, target: T, control: GroupControl) {
        if control.arriveAndWait() == GroupPhase.abort { return }
        while cshims_u64_load_acquire(Self.release) == 0 { usleep(1000) }
        // The run was abandoned as hung (its phase never reaches stop): stop it, serve the
        // clients' last requests so they finish, and leave when they have.
        cshims_u32_store_release(control.phase, GroupPhase.stop)
        inner.serveUntilClientsLeave(helper: helper, target: target, control: control)
    }
    func deallocate() { inner.deallocate() }
}

func delegationConfig(_ name: String, threads: Int, helpers: Int, iterations: Int, stall: Double = 60) throws -> RunConfig {
    RunConfig(spec: try LockSpec(parsing: "mcs"),
              threads: (0..<threads).map { ThreadSlot(index: $0, cpu: nil, node: 0) },
              length: .iterations(perThread: iterations), sampleEvery: 0, stallTimeoutSeconds: stall,
              helpers: (0..<helpers).map { ThreadSlot(index: threads + $0, cpu: nil, node: 0) },
              logOperations: true)
}

@Suite("Delegation", .serialized)
struct DelegationTests {
    @Test("the validator catches two servers applying at once",
          .enabled(if: !ThreadSanitizer.isActive, "races on purpose: ThreadSanitizer would report it"))
    func testValidatorCatchesServersWithoutExclusion() throws {
        // Overlap is likely, not certain, on a loaded 2-core machine: up to forty runs, each
        // operation a 2 us busy-wait inside (cs-ns) so that the two servers' applications overlap.
        var result: RawRunResult
        var attempts = 0
        repeat {
            attempts += 1
            let workload = Microbenchmark(.init(csLines: 4, csNanoseconds: 2_000), memory: LabMemory())
            result = try Harness.measure(executor: UnexcludedServers.self, workload: workload,
                                         config: try delegationConfig("unexcluded-servers", threads: 4, helpers: 2, iterations: 500))
        } while result.status == .ok && attempts < 40
        #expect(result.status == .mutexViolation, "no lost update in \(attempts) runs")
    }

    @Test func testValidatorCatchesALostResponse() throws {
        let workload = CounterWorkload(WorkloadEnvironment(threads: 2), outside: OutsideWork(nanoseconds: 0, random: false))
        let result = try Harness.measure(executor: LosesResponses.self, workload: workload,
                                         config: try delegationConfig("loses-responses", threads: 2, helpers: 0, iterations: 1_000))
        // Exclusion held (the counter and the model replay pass): only the responses check can see it.
        #expect(result.counter == 2_000)
        #expect(result.status == .mutexViolation)
        #expect(result.failure?.hasPrefix("responses:") == true, "\(result.failure ?? "no failure")")
    }

    @Test func testAServerThatStopsServingIsAHungRun() throws {
        cshims_u64_store_release(SilentServer.release, 0)
        let workload = CounterWorkload(WorkloadEnvironment(threads: 2), outside: OutsideWork(nanoseconds: 0, random: false))
        let started = Date()
        let result = try Harness.measure(executor: SilentServer.self, workload: workload,
                                         config: try delegationConfig("silent-server", threads: 2, helpers: 1, iterations: 100, stall: 1))
        // Let the abandoned threads finish rather than spin for the rest of the test process.
        cshims_u64_store_release(SilentServer.release, 1)
        #expect(result.status == .hung)
        #expect(Date().timeIntervalSince(started) < 30)
    }

    @Test("combining degree: ops per pass, at least one; none for a lock", arguments: ["flat-combining", "cc-synch", "h-synch", "ffwd", "rcl", "mcs"])
    func testCombiningDegree(name: String) throws {
        let entry = try #require(LockRegistry.lookup(name))
        let result = try validate(entry, threads: 4, workload: try WorkloadSpec(parsing: "counter"), iterations: 2_000)
        #expect(result.status == .ok, "\(result.failure ?? "")")
        if entry.descriptor.family == .delegation {
            let degree = try #require(result.combiningDegree, "\(name): no combining degree")
            #expect(degree >= 1 && degree <= 4 * 10, "\(name): \(degree)")
        } else {
            #expect(result.combiningDegree == nil)
        }
    }

    @Test func testPlanReservesTheServerCPUAndTheCSVRecordsIt() throws {
        let plan = try locklab(["plan", "--threads", "2", "--lock", "ffwd", "--csv"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let rows = plan.stdout.split(separator: "\n").map(String.init)
        #expect(rows.first == "thread,cpu,core,node,package,role")
        #expect(rows.filter { $0.hasSuffix(",server") }.count == 1)
        let dir = temporaryDirectory("delegation")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try locklab(["run", "--lock", "ffwd,cc-synch,mcs", "--workload", "counter", "--threads", "2",
                               "--duration", "0.1", "--warmup", "0.02", "--out", dir])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("note: ffwd at 2 threads: server on CPU"))
        let csv = try readCSV(path: dir + "/runs.csv")
        let byLock = Dictionary(uniqueKeysWithValues: csv.rows.map { ($0["lock"]!, $0) })
        let serverCPU = try #require(rows.first { $0.hasSuffix(",server") }?.split(separator: ",")[1])
        #expect(byLock["ffwd"]?["server_cpu"] == String(serverCPU))
        #expect(byLock["cc-synch"]?["server_cpu"] == "" && byLock["mcs"]?["server_cpu"] == "")
        #expect(Double(byLock["ffwd"]?["combining_degree"] ?? "") != nil)
        #expect(Double(byLock["cc-synch"]?["combining_degree"] ?? "") != nil)
        #expect(byLock["mcs"]?["combining_degree"] == "")
        #expect(csv.rows.allSatisfy { $0["status"] == "ok" })
    }

    @Test("the run's CPU time counts the server thread's",
          .enabled(if: cshims_online_cpus() >= 2, "needs a CPU for the server and one for the client"))
    func testRunCPUTimeIncludesTheServerThread() throws {
        // ffwd at one pinned client: its server spins on a CPU of its own the whole measured phase.
        // Even on a loaded machine it gets a good share of that CPU; before the server's time was
        // counted, the run's CPU time was exactly the client's.
        let workload = CounterWorkload(WorkloadEnvironment(threads: 1), outside: OutsideWork(nanoseconds: 0, random: false))
        let config = RunConfig(spec: try LockSpec(parsing: "ffwd"), threads: [ThreadSlot(index: 0, cpu: 1, node: 0)],
                               length: .timed(warmupSeconds: 0.05, measureSeconds: 0.5),
                               helpers: [ThreadSlot(index: 1, cpu: 0, node: 0)])
        let summary = RunSummary(try Harness.measure(executor: FFWDExecutor.self, workload: workload, config: config))
        #expect(summary.status == .ok, "\(summary.failure ?? "")")
        let clients = summary.threads.reduce(0.0) { $0 + $1.cpuUserSeconds + $1.cpuSystemSeconds }
        let run = summary.cpuUserSeconds + summary.cpuSystemSeconds
        // 5 % of the phase: a spinning server gets far more even beside the whole test suite (0.2 x
        // was once missed by 0.0005 s there); the old code's run CPU was the clients' exactly.
        #expect(run >= clients + 0.05 * summary.elapsedSeconds,
                "run \(run) s, clients \(clients) s, elapsed \(summary.elapsedSeconds) s: the server's CPU is missing")
        #expect(abs(run - clients - summary.helperCPUSeconds) < 1e-6)
        // One server thread over the measured phase: at most one CPU for that long (plus slack).
        #expect(summary.helperCPUSeconds <= summary.elapsedSeconds * 1.05 + 0.01, "\(summary.helperCPUSeconds) s")
    }

    @Test("torture drives every delegation executor", arguments: ["flat-combining", "cc-synch", "h-synch", "ffwd", "rcl"])
    func testTortureDrivesDelegation(name: String) throws {
        let entry = try #require(LockRegistry.lookup(name))
        let result = try entry.torture(TortureConfig(spec: try LockSpec(parsing: name), threads: 3, durationSeconds: 0.5, seed: 3))
        #expect(result.verdict == .passed, "\(name): \(result.verdict.message)")
        #expect(result.acquisitions > 0 && result.counter == result.acquisitions)
    }

    @Test("torture catches two servers applying at once",
          .enabled(if: !ThreadSanitizer.isActive, "races on purpose: ThreadSanitizer would report it"))
    func testTortureCatchesServersWithoutExclusion() throws {
        let result = try Torture.run(executor: UnexcludedServers.self,
                                     config: TortureConfig(spec: try LockSpec(parsing: "mcs"), threads: 4, durationSeconds: 20))
        guard case .violation = result.verdict else {
            Issue.record("two unexcluded servers passed torture: \(result.verdict)")
            return
        }
    }
}
