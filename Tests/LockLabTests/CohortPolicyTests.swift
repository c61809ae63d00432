// Policy tests of the hierarchical NUMA-aware locks (c-bo-mcs, c-tkt-tkt, c-mcs-mcs, hmcs), with
// PolicyProbe's probe: a holder holds the lock, waiters queue one at a time from known nodes, and the
// order in which they acquire is compared with the order the algorithm must produce.
//
// How the expected orders follow from the algorithms (waiter i is the i-th to arrive; "tenure" is the
// run of acquisitions during which one node's cohort keeps the global lock):
//  - the first waiter of every other node takes its node's local lock and queues on the global lock
//    (in arrival order for the FIFO globals: ticket, MCS); later waiters queue on their local lock;
//  - the holder's tenure continues with its node's waiters, in arrival order, for at most
//    limit handoffs (pass-limit / threshold), and the global lock then goes to the first node queued;
//  - a node's waiter that gets its local lock without the global one (the limit was reached) joins
//    the global queue only then. When two such waiters of different nodes are both owed the global
//    lock, which queues first is a race (the scheduler decides when each notices its handover), so
//    those tests accept each order the race allows, and nothing else;
//  - c-bo-mcs's global TTAS is not FIFO: whenever two nodes' heads contend, either may win. Its tests
//    accept exactly the interleavings of whole tenures.

import Testing
@testable import LockLab

/// The option that bounds consecutive local handoffs.
private func limitKey(_ lock: String) -> String { lock == "hmcs" ? "threshold" : "pass-limit" }

/// The probe, by registered name (`options` as the probe takes them: "key=value").
/// `holdMicroseconds` (each waiter's time in the critical section) widens the window in which a
/// waiter owed the global lock queues on it, so that the racy tests nearly always see the order
/// that tells the most (it never changes which orders are correct).
private func probe(_ lock: String, options: String = "", nodeCount: Int = 2, holderNode: Int = 0,
                   waiterNodes: [Int], holdMicroseconds: Int = 0) throws -> ProbeResult {
    let entry = try #require(LockRegistry.lookup(lock))
    return try probeAcquisitionOrder(entry.type!, options: options, nodeCount: nodeCount,
                                     holderNode: holderNode, waiterNodes: waiterNodes,
                                     holdMicroseconds: holdMicroseconds)
}

@Suite("Cohort policy", .serialized)
struct CohortPolicyTests {
    static let hierarchical = ["c-bo-mcs", "c-tkt-tkt", "c-mcs-mcs", "hmcs"]
    /// The locks whose global level is FIFO (ticket or MCS).
    static let fifoGlobal = ["c-tkt-tkt", "c-mcs-mcs", "hmcs"]

    @Test("registered as NUMA-aware, with the handoff bound as an option defaulting to 100",
          arguments: hierarchical)
    func testDescriptors(lock: String) throws {
        let descriptor = try #require(LockRegistry.lookup(lock)).descriptor
        #expect(descriptor.family == .numa)
        #expect(descriptor.supportsTryLock)
        #expect(descriptor.options.map(\.key) == [limitKey(lock)])
        #expect(descriptor.options.first?.defaultValue == 100)
        #expect(throws: LockError.self) { try LockSpec(parsing: "\(lock):\(limitKey(lock))=-1") }
    }

    // Holder on node 0; waiters 0..5 from nodes 0 1 0 1 0 1. Node 0's waiters (0, 2, 4) are fewer than
    // the limit, so the holder's tenure serves all of them; waiter 1 alone was queued on the global
    // lock, then its tenure serves 3 and 5. No race: the order is exact for all four locks.
    @Test("serve every waiter of the holder's node first, then the other node's, in arrival order",
          arguments: hierarchical)
    func testServesHolderNodeFirst(lock: String) throws {
        let result = try probe(lock, waiterNodes: [0, 1, 0, 1, 0, 1])
        #expect(result.order == [0, 2, 4, 1, 3, 5], "\(lock): \(result.order)")
        #expect(result.nodes == [0, 0, 0, 1, 1, 1])
    }

    // limit 1, nodes 0 1 0 1 0 1: the holder hands to 0 (one handoff), and 0 releases the global lock
    // although 2 and 4 still wait on node 0: the global queue holds waiter 1 only, so 1, then 3 (one
    // handoff). Then 2 (owed the global since 0's release) and 5 (since 3's) race to queue on it:
    // 2 first gives 2 4 5 (2 hands to 4), 5 first gives 5 2 4.
    @Test("limit 1: switch nodes after one local handoff although same-node waiters remain",
          arguments: fifoGlobal)
    func testSwitchesNodesAfterOneHandoff(lock: String) throws {
        let result = try probe(lock, options: "\(limitKey(lock))=1", waiterNodes: [0, 1, 0, 1, 0, 1],
                           holdMicroseconds: 10_000)
        #expect(Array(result.order.prefix(3)) == [0, 1, 3], "\(lock): \(result.order)")
        #expect([[0, 1, 3, 2, 4, 5], [0, 1, 3, 5, 2, 4]].contains(result.order), "\(lock): \(result.order)")
    }

    // limit 2, nodes 0 1 0 1 0 1 0 1: holder -> 0 -> 2 (two handoffs), global to 1 -> 3 -> 5; then
    // 4 (owed the global since 2's release) and 7 (since 5's) race: 4 6 7 or 7 4 6.
    @Test("limit 2: switch nodes after two local handoffs although same-node waiters remain",
          arguments: fifoGlobal)
    func testSwitchesNodesAfterTwoHandoffs(lock: String) throws {
        let result = try probe(lock, options: "\(limitKey(lock))=2", waiterNodes: [0, 1, 0, 1, 0, 1, 0, 1],
                           holdMicroseconds: 10_000)
        #expect(Array(result.order.prefix(5)) == [0, 2, 1, 3, 5], "\(lock): \(result.order)")
        #expect([[0, 2, 1, 3, 5, 4, 6, 7], [0, 2, 1, 3, 5, 7, 4, 6]].contains(result.order),
                "\(lock): \(result.order)")
    }

    // c-bo-mcs, limit 1, nodes 0 1 0 1 0 1: the holder's tenure is {holder, 0}. Then whole tenures
    // of the global TTAS in any order: node 0 {2, 4}; node 1 {1, 3} then {5} (3 hit the limit).
    @Test("c-bo-mcs limit 1: one local handoff per tenure, tenures whole, nodes FIFO inside")
    func testBackoffCohortKeepsTenuresWhole() throws {
        let result = try probe("c-bo-mcs", options: "pass-limit=1", waiterNodes: [0, 1, 0, 1, 0, 1])
        let tenureInterleavings: [[Int]] = [[0, 2, 4, 1, 3, 5], [0, 1, 3, 2, 4, 5], [0, 1, 3, 5, 2, 4]]
        #expect(tenureInterleavings.contains(result.order), "c-bo-mcs: \(result.order)")
    }

    // Three nodes, holder on node 2; nodes 0 1 2 0 1 2: the holder's tenure serves 2 and 5; 0 and 1
    // were queued on the global lock in that order, so node 0's tenure (0, 3), then node 1's (1, 4).
    @Test("three nodes, holder on node 2: its node first, then the others in global-queue order",
          arguments: fifoGlobal)
    func testThreeNodesFIFOGlobal(lock: String) throws {
        let result = try probe(lock, nodeCount: 3, holderNode: 2, waiterNodes: [0, 1, 2, 0, 1, 2])
        #expect(result.order == [2, 5, 0, 3, 1, 4], "\(lock): \(result.order)")
    }

    // The same for c-bo-mcs: after the holder's tenure, nodes 0 and 1 race for the global TTAS.
    @Test("c-bo-mcs, three nodes, holder on node 2: its node first, then whole tenures")
    func testThreeNodesBackoffCohort() throws {
        let result = try probe("c-bo-mcs", nodeCount: 3, holderNode: 2, waiterNodes: [0, 1, 2, 0, 1, 2])
        #expect([[2, 5, 0, 3, 1, 4], [2, 5, 1, 4, 0, 3]].contains(result.order), "c-bo-mcs: \(result.order)")
    }

    // A trylock from another node takes its local lock, fails on the global one and must give the
    // local lock back: otherwise the next trylock from that node fails on the local lock forever.
    @Test("trylock from another node fails while held and leaves no lock behind", arguments: hierarchical)
    func testTrylockFromOtherNodeBacksOut(lock: String) throws {
        let entry = try #require(LockRegistry.lookup(lock))
        try checkCrossNodeTrylock(entry.type!)
    }
}

// The generic validator runs two nodes at the default limit (100), where most tenures end because
// the node's queue drained. Small limits end tenures on the limit, over and over, which is where the
// global lock (and c-mcs-mcs's and hmcs's per-node global queue node) changes hands between threads
// of a node; three nodes put two heads on the global lock. Counter exact, a third by trylock.
@Suite("Cohort stress", .serialized)
struct CohortStressTests {
    @Test("counter exact at 6 threads on 3 nodes with limits 0, 1 and 2", arguments: CohortPolicyTests.hierarchical)
    func testSmallLimitsThreeNodes(lock: String) throws {
        let entry = try #require(LockRegistry.lookup(lock))
        let threads = 6
        let iterations = 5_000
        for limit in [0, 1, 2] {
            let config = RunConfig(
                spec: try LockSpec(parsing: "\(lock):\(limitKey(lock))=\(limit)"),
                threads: (0..<threads).map { ThreadSlot(index: $0, cpu: nil, node: $0 % 3) },
                nodeCount: 3,
                length: .iterations(perThread: iterations),
                sampleEvery: 0, trylockEvery: 3, stallTimeoutSeconds: 120)
            let result = try entry.run(config, MicrobenchmarkParameters(csLines: 2))
            #expect(result.status == .ok, "\(lock) limit \(limit): \(result.status)")
            #expect(result.counter == UInt64(threads * iterations), "\(lock) limit \(limit): counter \(result.counter)")
        }
    }
}

private func checkCrossNodeTrylock<L: LockAlgorithm>(_ type: L.Type) throws {
    let name = L.descriptor.name
    let lock = try L(LockEnvironment(maxThreads: 3, nodeCount: 2, options: try LockSpec(parsing: name).options))
    defer { lock.deallocate() }
    var holder = lock.makeContext(for: ThreadSlot(index: 0, cpu: 0, node: 0))
    var other = lock.makeContext(for: ThreadSlot(index: 1, cpu: 0, node: 1))
    var sameNode = lock.makeContext(for: ThreadSlot(index: 2, cpu: 0, node: 0))
    defer {
        lock.freeContext(&holder)
        lock.freeContext(&other)
        lock.freeContext(&sameNode)
    }
    lock.lock(&holder)
    #expect(!lock.tryLock(&other), "\(name): trylock from node 1 succeeded while node 0 holds")
    #expect(!lock.tryLock(&other), "\(name): second trylock from node 1 succeeded while node 0 holds")
    #expect(!lock.tryLock(&sameNode), "\(name): trylock from node 0 succeeded while held")
    lock.unlock(&holder)
    #expect(lock.tryLock(&other), "\(name): trylock from node 1 failed on a free lock (local lock not given back?)")
    #expect(!lock.tryLock(&holder), "\(name): trylock from node 0 succeeded while node 1 holds")
    lock.unlock(&other)
    #expect(lock.tryLock(&holder), "\(name): trylock from node 0 failed on a free lock (global lock not given back?)")
    lock.unlock(&holder)
    lock.lock(&other)
    lock.unlock(&other)
}
