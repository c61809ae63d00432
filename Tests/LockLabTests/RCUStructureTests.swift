// RCU twins of hashtable and list (Workloads/RCUHashTable.swift, RCUSortedList.swift): every flavour
// passes the harness's checks on both (the model replay of the updates, every read inside its
// version window, every thread's responses, no poisoned read, the chains' and the pool's
// accounting) at 2 threads and oversubscribed at 4, at 50, 90 and 99 % reads; and on hashtable the
// checks bite: a flavour whose grace period ends at once, and a reader that leaves its read-side
// section before it is done with the chain, are caught at 2 threads, while the correct flavour
// passes the same load.

import CShims
import Testing
@testable import LockLab

private func slots(_ n: Int) -> [ThreadSlot] { (0..<n).map { ThreadSlot(index: $0, cpu: nil, node: 0) } }

/// Runs flavour `F` (writer MCS, batch 1: a grace period after every update) on hashtable's twin
/// over `keys` keys, unlogged: only the twin's own checks (poisoned reads, chains, pool) judge it.
private func measureHashTable<F: RCUFlavor>(_ flavor: F.Type, threads: Int, perThread: Int, keys: Int, readPercent: Int) throws -> RawRunResult {
    var values: [String: Int] = ["writer": 0, "batch": 1]
    for o in F.options { values[o.key] = o.defaultValue }
    let w = try RCUHashTableWorkload<F>(WorkloadEnvironment(threads: threads, seed: 7), keys: keys, readPercent: readPercent,
                                        outside: OutsideWork(nanoseconds: 0, random: false), options: LockOptions(values))
    let config = RunConfig(spec: try LockSpec(parsing: "rcu-ebr"), threads: slots(threads), nodeCount: 1,
                           length: .iterations(perThread: perThread), sampleEvery: 0)
    return try Harness.measure(executor: RCUExecutor<F, MCSLock>.self, workload: w, config: config) { env in
        try RCUExecutor<F, MCSLock>(env, domain: w.domain)
    }
}

@Suite("RCU structures", .serialized)
struct RCUStructureTests {
    static let flavours = LockRegistry.all.filter(\.isRCU).map(\.descriptor.name)

    @Test("hashtable, list and snapshot have RCU twins whose reads tolerate updates; the others none")
    func testTwins() {
        #expect(WorkloadKind.allCases.filter(\.hasRCUTwin) == [.hashtable, .list, .snapshot])
        for kind in WorkloadKind.allCases { #expect(kind.rcuStructureType?.readsTolerateConcurrentUpdates ?? true) }
        #expect(RCUChainedHashTable.isReadOnly(Operation(code: ChainedHashTable.get)))
        #expect(!RCUChainedHashTable.isReadOnly(Operation(code: ChainedHashTable.put)))
        #expect(RCUSortedLinkedList.isReadOnly(Operation(code: SortedLinkedList.contains)))
        #expect(!RCUSortedLinkedList.isReadOnly(Operation(code: SortedLinkedList.delete)))
    }

    @Test("every flavour passes the model, read-window, response and pool checks on hashtable and list (2 threads, 4 oversubscribed; 50/90/99 % reads)",
          arguments: flavours, ["hashtable:keys=64", "list:keys=64"])
    func testFlavourPassesOnStructure(flavour: String, workload: String) throws {
        try ThreadSanitizer.skipIfBlind(flavour)
        for readPercent in [50, 90, 99] {
            for (threads, batch) in [(2, 1), (2, 64), (4, 3)] {
                let lock = "\(flavour):batch=\(batch)"
                let perThread = ThreadSanitizer.scaled(threads > Int(cshims_online_cpus()) ? 1_000 : 5_000)
                let config = RunConfig(spec: try LockSpec(parsing: lock), threads: slots(threads), nodeCount: 1,
                                       length: .iterations(perThread: perThread), sampleEvery: 4, logOperations: true)
                let spec = try WorkloadSpec(parsing: "\(workload):read-ratio=\(readPercent)")
                let result = try LockSpec(parsing: lock).entry.run(config, spec)
                #expect(result.status == .ok, "\(lock) on \(spec.label) at \(threads) threads: \(result.failure ?? "")")
                let reads = result.threads.reduce(UInt64(0)) { $0 + $1.totalReads }
                #expect(reads > 0)
                #expect(result.counter == UInt64(threads * perThread) - reads)
                let reclamation = try #require(result.reclamation)
                #expect(reclamation.awaitingHighWater <= UInt64(threads * (batch + 1)))
            }
        }
    }

    @Test("hashtable's twin starts empty, keeps the model's contents, and its pool accounts for every node")
    func testHashTableSequential() throws {
        var values: [String: Int] = ["writer": 0, "batch": 2]
        for o in QSBR.options { values[o.key] = o.defaultValue }
        let w = try RCUHashTableWorkload<QSBR>(WorkloadEnvironment(threads: 1), keys: 8, readPercent: 50,
                                               outside: OutsideWork(nanoseconds: 0, random: false), options: LockOptions(values))
        defer { w.deallocate() }
        var model = w.makeModel()
        var state = w.makeThreadState(for: ThreadSlot(index: 0, cpu: nil, node: 0), seed: 3)
        var reader = w.domain.flavor.register(thread: 0)
        for _ in 0..<2_000 {
            let op = w.nextOperation(&state)
            w.domain.reclaimer.beginUpdate(thread: 0)
            #expect(w.structure.apply(op) == model.apply(op))
            w.domain.reclaimer.reclaim(thread: 0, flavor: w.domain.flavor, reader: &reader)
            w.domain.flavor.quiescentState(&reader)
        }
        w.domain.reclaimer.reclaim(thread: 0, flavor: w.domain.flavor, reader: &reader, atLeast: 1)
        w.domain.flavor.unregister(&reader)
        #expect(w.contents() == model.contents())
        #expect(w.invariantFailure(applied: 0) == nil)
    }

    @Test("the checks bite on hashtable: a grace period that ends at once is caught (2 threads)")
    func testEarlyFreeCaughtOnHashTable() throws {
        for _ in 0..<5 {
            let result = try measureHashTable(EarlyFreeRCU<EBR>.self, threads: 2, perThread: 200_000, keys: 8, readPercent: 50)
            if result.status == .mutexViolation {
                #expect(result.failure?.contains("poisoned") == true, "\(result.failure ?? "")")
                return
            }
        }
        Issue.record("five runs of a flavour that frees under its readers passed on hashtable")
    }

    @Test("the checks bite on hashtable: a reader that leaves its section before walking the chain is caught (2 threads)",
          arguments: ["ebr", "memb"])
    func testReaderLeavingEarlyCaughtOnHashTable(flavour: String) throws {
        for _ in 0..<5 {
            let result = flavour == "ebr"
                ? try measureHashTable(LeavesEarlyRCU<EBR>.self, threads: 2, perThread: 200_000, keys: 8, readPercent: 50)
                : try measureHashTable(LeavesEarlyRCU<MembRCU>.self, threads: 2, perThread: 200_000, keys: 8, readPercent: 50)
            if result.status == .mutexViolation { return }
        }
        Issue.record("five runs of a reader outside its read-side section passed on hashtable")
    }

    @Test("the correct flavour passes what the broken ones fail on hashtable (same load)")
    func testCorrectPassesSameLoadOnHashTable() throws {
        let result = try measureHashTable(EBR.self, threads: 2, perThread: 100_000, keys: 8, readPercent: 50)
        #expect(result.status == .ok, "\(result.failure ?? "")")
    }
}
