// The Executor protocol's delegation side, exercised before any delegation executor exists: a
// minimal single-server executor (one request line per client, a helper thread that applies the
// requests) runs through the same harness, ThreadGroup and workload models as the locks. It shows
// that helper threads are started, fed the phases, and stopped; that operations and results travel
// through request lines; and that the harness's checks hold for an executor that applies other
// threads' operations. Not a lock of the lab: the real ones (ffwd, RCL, ...) come with issue 9.

import CShims
import Testing
@testable import LockLab

/// Clients publish an operation in their own 64-byte request line (flag 1), the server applies it
/// and writes the result (flag 2), the client takes it (flag 0). Line layout: flag, code, arg0,
/// arg1, result.
struct SingleServerExecutor: Executor {
    typealias Context = UnsafeMutablePointer<UInt64>
    static let descriptor = LockDescriptor(name: "test-single-server", family: .delegation, waiting: .spin,
                                           paper: "test only: a minimal server thread", supportsTryLock: false,
                                           helperThreads: 1)
    let lines: UnsafeMutablePointer<UInt64>
    let clients: Int
    let memory: LabMemory

    init(_ environment: ExecutorEnvironment) {
        clients = environment.clientThreads
        memory = environment.memory
        lines = memory.allocate(bytes: clients * 128).bindMemory(to: UInt64.self, capacity: clients * 16)
    }

    func makeContext(for thread: ThreadSlot) -> Context { lines + thread.index * 16 }

    func execute<T: OperationTarget>(_ op: Operation, on target: T, _ line: inout Context) -> UInt64 {
        line[1] = op.code
        line[2] = op.arg0
        line[3] = op.arg1
        cshims_u64_store_release(line, 1)
        var spins = 0
        while cshims_u64_load_acquire(line) != 2 {
            spins += 1
            if spins & 1023 == 0 { sched_yield() } else { cshims_pause() }
        }
        let result = line[4]
        cshims_u64_store_relaxed(line, 0)
        return result
    }

    func serve<T: OperationTarget>(helper: ThreadSlot, target: T, control: GroupControl) {
        if control.arriveAndWait() == GroupPhase.abort { return }
        var served: UInt64 = 0
        while control.currentPhase() != GroupPhase.stop {
            var idle = true
            for c in 0..<clients {
                let line = lines + c * 16
                guard cshims_u64_load_acquire(line) == 1 else { continue }
                line[4] = target.apply(Operation(code: line[1], arg0: line[2], arg1: line[3]))
                cshims_u64_store_release(line, 2)
                served += 1
                idle = false
            }
            cshims_u64_store_relaxed(control.progress(helper.index), served)
            if idle { sched_yield() }
        }
    }

    func deallocate() { memory.deallocate(UnsafeMutableRawPointer(lines), bytes: clients * 128) }
}

@Suite("Executors", .serialized)
struct ExecutorTests {
    @Test("a server executor runs every workload through a helper thread, models hold",
          .enabled(if: !ThreadSanitizer.isActive, "spins with a yield every 1024 pauses: too slow under TSan"))
    func testServerExecutorRunsEveryWorkload() throws {
        let topology = try Topology.load()
        let plan = try topology.plan(threads: 2, placement: .compact, helpers: 1)
        #expect(plan.helperSlots.count == 1 && plan.helperSlots[0].index == 2)
        for kind in WorkloadKind.allCases {
            let workload = try WorkloadSpec(parsing: kind == .hashtable || kind == .list ? "\(kind.rawValue):keys=32" : kind.rawValue)
            // Unpinned: this 2-CPU machine has no CPU to spare for the server.
            let config = RunConfig(spec: try LockSpec(parsing: "tas"), threads: (0..<2).map { ThreadSlot(index: $0, cpu: nil, node: 0) },
                                   length: .iterations(perThread: 500), sampleEvery: 5, stallTimeoutSeconds: 60,
                                   helpers: [ThreadSlot(index: 2, cpu: nil, node: 0)], logOperations: true)
            let entry = LockEntry(executor: SingleServerExecutor.self)
            let result = try entry.run(config, workload)
            #expect(result.status == .ok, "\(workload): \(result.status) \(result.failure ?? "")")
            #expect(result.counter == 1_000)
            // One applier (the server) for every operation: no handover between clients at all.
            #expect(result.threads.allSatisfy { $0.handoversIn == 0 })
            #expect(result.threads.allSatisfy { $0.latencyCycles.totalCount > 0 })
        }
    }
}
