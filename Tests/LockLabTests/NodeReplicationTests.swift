// Node replication's checks: the broken variants (NRFault) must each be caught by the harness at
// 2 threads on 2 virtual nodes, and the correct executor passes on every workload with a log small
// enough to wrap and to make the combiners sync a lagging replica. (The validator's generic tests
// and torture run `nr` too: it is in LockRegistry.lockNames.)

import Foundation
import Testing
@testable import LockLab

/// `nr` with a fault injected; everything else is NodeReplicationExecutor's.
struct FaultyNR<F: NRFaultKind>: Executor {
    static var descriptor: LockDescriptor { NodeReplicationExecutor.descriptor }
    static var readSharing: ReadSharing { .shared }
    static func replicas(nodeCount: Int) -> Int { NodeReplicationExecutor.replicas(nodeCount: nodeCount) }
    let inner: NodeReplicationExecutor
    init(_ environment: ExecutorEnvironment) throws { inner = try NodeReplicationExecutor(environment, fault: F.fault) }
    func makeContext(for thread: ThreadSlot) -> NodeReplicationExecutor.Context { inner.makeContext(for: thread) }
    func execute<T: OperationTarget>(_ op: LockLab.Operation, on target: T, _ context: inout NodeReplicationExecutor.Context) -> UInt64 {
        inner.execute(op, on: target, &context)
    }
    func executeRead<T: OperationTarget>(_ op: LockLab.Operation, on target: T, _ context: inout NodeReplicationExecutor.Context) -> UInt64 {
        inner.executeRead(op, on: target, &context)
    }
    func catchUp<T: OperationTarget>(through target: T) { inner.catchUp(through: target) }
    func replicationCounts() -> ReplicationCounts? { inner.replicationCounts() }
    func combiningCounts() -> CombiningCounts? { inner.combiningCounts() }
    func deallocate() { inner.deallocate() }
}

protocol NRFaultKind { static var fault: NRFault { get } }
enum NoFault: NRFaultKind { static var fault: NRFault { .none } }
enum StaleRead: NRFaultKind { static var fault: NRFault { .staleRead } }
enum SkipEntry: NRFaultKind { static var fault: NRFault { .skipEntry } }
enum EarlyReuse: NRFaultKind { static var fault: NRFault { .earlyReuse } }

/// Two threads, one per virtual node, `perThread` operations each, logged; `logBytes` small so the
/// log wraps.
func nrRun<F: NRFaultKind>(_ fault: F.Type, readPercent: Int, perThread: Int, logBytes: Int, seed: UInt64,
                           ncsNanoseconds: Int = 0) throws -> RawRunResult {
    let config = RunConfig(spec: try LockSpec(parsing: "nr:log-bytes=\(logBytes)"),
                           threads: (0..<2).map { ThreadSlot(index: $0, cpu: nil, node: $0) }, nodeCount: 2,
                           length: .iterations(perThread: perThread), sampleEvery: 0, seed: seed,
                           stallTimeoutSeconds: 60, logOperations: true)
    let make = { HashTableWorkload(WorkloadEnvironment(threads: 2, seed: seed), keys: 8, readPercent: readPercent,
                                   outside: OutsideWork(nanoseconds: ncsNanoseconds, random: true)) }
    return try Harness.measure(executor: FaultyNR<F>.self, workload: make(), config: config, replicas: [make()])
}

@Suite("Node replication", .serialized)
struct NodeReplicationTests {
    @Test("the correct executor passes with a log that wraps (64 entries)", arguments: [0, 50, 90])
    func testCorrectPasses(readPercent: Int) throws {
        for seed in UInt64(1)...3 {
            let r = try nrRun(NoFault.self, readPercent: readPercent, perThread: 3_000, logBytes: 4096, seed: seed)
            #expect(r.status == .ok, "\(r.failure ?? "")")
            #expect(r.replication?.replicas == 2)
        }
    }

    @Test("a read that does not catch up to the completed tail is caught (stale read)")
    func testStaleReadCaught() throws {
        var caught = false
        for seed in UInt64(1)...20 where !caught {
            // One node mostly updates, the other mostly reads: the reader's replica lags.
            let r = try nrRun(StaleRead.self, readPercent: 50, perThread: 4_000, logBytes: 1 << 20, seed: seed,
                              ncsNanoseconds: 200)
            caught = r.status == .mutexViolation
            if caught { #expect(r.failure?.contains("read") == true, "\(r.failure ?? "")") }
        }
        #expect(caught, "no stale read seen in 20 runs")
    }

    @Test("a combiner that skips an entry on one replica is caught")
    func testSkippedEntryCaught() throws {
        let r = try nrRun(SkipEntry.self, readPercent: 20, perThread: 2_000, logBytes: 1 << 20, seed: 1)
        #expect(r.status == .mutexViolation)
        #expect(r.failure?.contains("replica 1") == true, "\(r.failure ?? "")")
    }

    @Test("a log slot reused before every replica replayed it is caught",
          .enabled(if: !ThreadSanitizer.isActive, "races on purpose: ThreadSanitizer would report it"))
    func testEarlyReuseCaught() throws {
        var caught = false
        var runs = 0
        for seed in UInt64(1)...20 where !caught {
            // A 64-entry log: a replica that falls 64 entries behind (its thread descheduled, or
            // slowed by its outside work) finds its entries overwritten.
            let r = try nrRun(EarlyReuse.self, readPercent: 50, perThread: 4_000, logBytes: 4096, seed: seed,
                              ncsNanoseconds: 200)
            runs += 1
            caught = r.status == .mutexViolation
            // The overwritten entries make the lagging replica diverge: a read it answers falls
            // outside its window, or the replica differs from the model at the end.
            if caught {
                #expect(r.failure.map { $0.contains("read") || $0.contains("replica") } == true, "got: \(r.failure ?? "nil")")
            }
            else { #expect(r.status == .ok, "\(r.failure ?? "")") }
        }
        #expect(caught, "no overwritten entry seen in \(runs) runs")
    }

    @Test("memory and log columns are filled for nr only")
    func testReplicationColumns() throws {
        let r = try nrRun(NoFault.self, readPercent: 50, perThread: 1_000, logBytes: 1 << 16, seed: 1)
        let s = RunSummary(r)
        let rep = try #require(s.replication)
        #expect(rep.logBytes >= 1 << 16)
        #expect(rep.replicaBytes > 0)
        #expect(rep.appended > 0)
    }
}
