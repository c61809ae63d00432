// Policy tests of the hierarchical NUMA-aware locks (c-bo-mcs, c-tkt-tkt, c-mcs-mcs, hmcs), with
// PolicyProbe's probe: a holder holds the lock, waiters queue one at a time from known nodes, and the
// order in which they acquire is compared with the order the algorithm must produce.
//
// How the expected orders follow from the algorithms (waiter i is the i-th to arrive; "tenure" is the
// run of acquisitions during which one node's cohort keeps the global lock):
//  - the first waiter of every other node takes its node's local lock and queues on the global lock
//    (in arrival order for the FIFO globals: ticket, MCS); later waiters queue on their local lock;
//  - the holder's tenure continues with its node's waiters, in arrival order, for at most n
//    acquisitions, and the global lock then goes to the first node queued;
//  - a node's waiter that gets its local lock without the global one (the limit was reached) joins
//    the global queue only then. When two such waiters of different nodes are both owed the global
//    lock, which queues first is a race (the scheduler decides when each notices its handover), so
//    those tests accept each order the race allows, and nothing else;
//  - c-bo-mcs's global TTAS is not FIFO: whenever two nodes' heads contend, either may win. Its tests
//    accept exactly the interleavings of whole tenures.
// The ordering tests bound tenures to n acquisitions with the rule all four share: ck's pass rule
// for the cohort locks (`pass-limit=n:pass-rule=1`) and hmcs's `threshold=n` (LiTL's hmcs.c). The
// presets (LiTL's batch_count for the cohort locks, LiTL's threshold for hmcs, LiTL's backoff for
// c-bo-mcs's global lock) have their own tests below.

import Testing
@testable import LockLab

/// Options that bound a tenure to `n` acquisitions (n - 1 local handoffs).
private func tenureOptions(_ lock: String, acquisitions n: Int) -> String {
    lock == "hmcs" ? "threshold=\(n)" : "pass-limit=\(n),pass-rule=1"
}

/// The probe, by registered name (`options` as the probe takes them: "key=value,key=value").
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
    static let cohorts = ["c-bo-mcs", "c-tkt-tkt", "c-mcs-mcs"]
    /// The locks whose global level is FIFO (ticket or MCS).
    static let fifoGlobal = ["c-tkt-tkt", "c-mcs-mcs", "hmcs"]

    @Test("registered as NUMA-aware with their reference's defaults: LiTL's 100, LiTL's pass rule",
          arguments: hierarchical)
    func testDescriptors(lock: String) throws {
        let descriptor = try #require(LockRegistry.lookup(lock)).descriptor
        #expect(descriptor.family == .numa)
        #expect(descriptor.supportsTryLock)
        #expect(descriptor.paper.contains("LiTL"), "\(lock): list must name the reference of its defaults")
        let defaults = Dictionary(uniqueKeysWithValues: descriptor.options.map { ($0.key, $0.defaultValue) })
        if lock == "hmcs" {
            #expect(defaults == ["threshold": 100])
            #expect(throws: LockError.self) { try LockSpec(parsing: "hmcs:threshold=0") }
        } else {
            #expect(defaults == ["pass-limit": 100, "pass-rule": CohortPassRule.litl.rawValue])
            #expect(throws: LockError.self) { try LockSpec(parsing: "\(lock):pass-limit=-1") }
            #expect(throws: LockError.self) { try LockSpec(parsing: "\(lock):pass-rule=2") }
        }
    }

    // Holder on node 0; waiters 0..5 from nodes 0 1 0 1 0 1. Node 0's waiters (0, 2, 4) are fewer than
    // the limit, so the holder's tenure serves all of them; waiter 1 alone was queued on the global
    // lock, then its tenure serves 3 and 5. No race: the order is exact for all four locks.
    @Test("serve every waiter of the holder's node first, then the other node's, in arrival order",
          arguments: hierarchical)
    func testServesHolderNodeFirst(lock: String) throws {
        let result = try probe(lock, options: tenureOptions(lock, acquisitions: 100), waiterNodes: [0, 1, 0, 1, 0, 1])
        #expect(result.order == [0, 2, 4, 1, 3, 5], "\(lock): \(result.order)")
        #expect(result.nodes == [0, 0, 0, 1, 1, 1])
    }

    // Two acquisitions per tenure, nodes 0 1 0 1 0 1: the holder hands to 0, and 0 releases the global
    // lock although 2 and 4 still wait on node 0: the global queue holds waiter 1 only, so 1, then 3.
    // Then 2 (owed the global since 0's release) and 5 (since 3's) race to queue on it: 2 first gives
    // 2 4 5 (2 hands to 4), 5 first gives 5 2 4.
    @Test("two acquisitions per tenure: switch nodes after one local handoff although same-node waiters remain",
          arguments: fifoGlobal)
    func testSwitchesNodesAfterOneHandoff(lock: String) throws {
        let result = try probe(lock, options: tenureOptions(lock, acquisitions: 2), waiterNodes: [0, 1, 0, 1, 0, 1],
                           holdMicroseconds: 10_000)
        #expect(Array(result.order.prefix(3)) == [0, 1, 3], "\(lock): \(result.order)")
        #expect([[0, 1, 3, 2, 4, 5], [0, 1, 3, 5, 2, 4]].contains(result.order), "\(lock): \(result.order)")
    }

    // Three acquisitions per tenure, nodes 0 1 0 1 0 1 0 1: holder -> 0 -> 2, global to 1 -> 3 -> 5;
    // then 4 (owed the global since 2's release) and 7 (since 5's) race: 4 6 7 or 7 4 6.
    @Test("three acquisitions per tenure: switch nodes after two local handoffs although same-node waiters remain",
          arguments: fifoGlobal)
    func testSwitchesNodesAfterTwoHandoffs(lock: String) throws {
        let result = try probe(lock, options: tenureOptions(lock, acquisitions: 3), waiterNodes: [0, 1, 0, 1, 0, 1, 0, 1],
                           holdMicroseconds: 10_000)
        #expect(Array(result.order.prefix(5)) == [0, 2, 1, 3, 5], "\(lock): \(result.order)")
        #expect([[0, 2, 1, 3, 5, 4, 6, 7], [0, 2, 1, 3, 5, 7, 4, 6]].contains(result.order),
                "\(lock): \(result.order)")
    }

    // hmcs, threshold 1: every tenure is one acquisition (LiTL's status reaches RELEASE_THRESHOLD at
    // COHORT_START). Nodes 0 1 0 1: the holder releases the root to 1 (queued on it first) and its
    // node's lock to 0, which is then owed the root; 1 releases the root and its node's lock to 3,
    // owed the root from then on. 0 (owed since the holder's release) and 3 (since 1's) race to
    // queue on the root: 0 first nearly always (1's 10 ms hold is its head start) gives 1 0 and then
    // 2 and 3 race as above; 3 first (0 was not scheduled for all of 1's hold: a loaded machine, or
    // ThreadSanitizer) gives 1 3 0 2. No order may show a local handoff (0 first, or 2 before 0).
    @Test("hmcs threshold 1: no local handoff at all")
    func testHMCSThresholdOneNeverPasses() throws {
        let result = try probe("hmcs", options: "threshold=1", waiterNodes: [0, 1, 0, 1], holdMicroseconds: 10_000)
        #expect(result.order.first == 1, "hmcs: \(result.order)")
        #expect([[1, 0, 3, 2], [1, 0, 2, 3], [1, 3, 0, 2]].contains(result.order), "hmcs: \(result.order)")
    }

    // c-bo-mcs, two acquisitions per tenure, nodes 0 1 0 1 0 1: the holder's tenure is {holder, 0}.
    // Then whole tenures of the global TTAS in any order: node 0 {2, 4}; node 1 {1, 3} then {5}.
    @Test("c-bo-mcs, two acquisitions per tenure: tenures whole, nodes FIFO inside")
    func testBackoffCohortKeepsTenuresWhole() throws {
        let result = try probe("c-bo-mcs", options: tenureOptions("c-bo-mcs", acquisitions: 2), waiterNodes: [0, 1, 0, 1, 0, 1])
        let tenureInterleavings: [[Int]] = [[0, 2, 4, 1, 3, 5], [0, 1, 3, 2, 4, 5], [0, 1, 3, 5, 2, 4]]
        #expect(tenureInterleavings.contains(result.order), "c-bo-mcs: \(result.order)")
    }

    // Three nodes, holder on node 2; nodes 0 1 2 0 1 2: the holder's tenure serves 2 and 5; 0 and 1
    // were queued on the global lock in that order, so node 0's tenure (0, 3), then node 1's (1, 4).
    @Test("three nodes, holder on node 2: its node first, then the others in global-queue order",
          arguments: fifoGlobal)
    func testThreeNodesFIFOGlobal(lock: String) throws {
        let result = try probe(lock, options: tenureOptions(lock, acquisitions: 100), nodeCount: 3, holderNode: 2,
                               waiterNodes: [0, 1, 2, 0, 1, 2])
        #expect(result.order == [2, 5, 0, 3, 1, 4], "\(lock): \(result.order)")
    }

    // The same for c-bo-mcs: after the holder's tenure, nodes 0 and 1 race for the global TTAS.
    @Test("c-bo-mcs, three nodes, holder on node 2: its node first, then whole tenures")
    func testThreeNodesBackoffCohort() throws {
        let result = try probe("c-bo-mcs", options: tenureOptions("c-bo-mcs", acquisitions: 100), nodeCount: 3,
                               holderNode: 2, waiterNodes: [0, 1, 2, 0, 1, 2])
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

// The presets: each default reproduces a named reference (the lock file's header cites file and
// line); the other reference is reached by options.
@Suite("Cohort presets", .serialized)
struct CohortPresetTests {
    // LiTL's batch_count (cbomcs.c:246-257, ctkttkt.c:158-170), pass-limit 3, one node busy (so the
    // global lock never changes hands between nodes and the order is FIFO whatever the tenures):
    // the budget starts at 0, so the holder's release, with 5 waiters, refills it to 3 and ends the
    // tenure; 0, 1 and 2 pass (3 -> 0); 3 finds it spent with 4 waiting: refill to 3, end; 4 releases
    // alone: budget 3. Then holder + 2 waiters: 3 -> 2 -> 1, and 1 releases alone: the budget stays 1
    // (carried into the next tenure). ck's rule refills at every release: 2 (pass-limit - 1) after
    // either round; a budget starting full would end the first round at 2.
    @Test("LiTL's pass rule: budget starts at 0, refilled only when spent with a waiter, carried over tenures",
          arguments: CohortPolicyTests.cohorts)
    func testLiTLBatchCount(lock: String) throws {
        let entry = try #require(LockRegistry.lookup(lock))
        try checkPassBudget(entry.type!, options: "pass-limit=3", rounds: [5, 2], expected: [3, 1])
        try checkPassBudget(entry.type!, options: "pass-limit=3,pass-rule=1", rounds: [5, 2], expected: [2, 2])
    }

    // ck's pass rule (ck_cohort.h:93, 102-108) with ck's default, CK_COHORT_DEFAULT_LOCAL_PASS_LIMIT
    // 10 (ck_cohort.h:46): 10 acquisitions per tenure. Holder on node 0, eleven node-0 waiters and one
    // node-1 waiter that queued on the global lock after the first: holder, 0, 2..9 (ten), node 1's
    // tenure (1), then node 0 again (10, 11). FIFO globals only (c-bo-mcs's is a race).
    @Test("ck's pass rule and limit: ten acquisitions per tenure", arguments: ["c-tkt-tkt", "c-mcs-mcs"])
    func testCKPassLimit(lock: String) throws {
        let result = try probe(lock, options: "pass-limit=10,pass-rule=1",
                               waiterNodes: [0, 1] + Array(repeating: 0, count: 10))
        #expect(result.order == [0] + Array(2...9) + [1, 10, 11], "\(lock): \(result.order)")
    }

    // LiTL's hmcs.c: status starts at COHORT_START 1 (hmcs.c:52) and the root is released when it
    // reaches RELEASE_THRESHOLD (hmcs.c:223): threshold 3 is three acquisitions per tenure. Holder on
    // node 0, waiters 0 1 0 0 0: holder, 0, 2 (three), then node 1's 1, then 3 and 4.
    @Test("hmcs: threshold N is N acquisitions per tenure, as LiTL's hmcs.c")
    func testHMCSThresholdCountsAcquisitions() throws {
        let result = try probe("hmcs", options: "threshold=3", waiterNodes: [0, 1, 0, 0, 0])
        #expect(result.order == [0, 2, 1, 3, 4], "hmcs: \(result.order)")
    }

    // LiTL's __backoff_mutex_lock (cbomcs.c:130-148): delay from DEFAULT_BACKOFF_DELAY 1 << 9, doubled
    // while below MAX_BACKOFF_DELAY (1 << 20) - 1. The shared loop's capped doubling with c-bo-mcs's
    // constants must give the same delays, step for step.
    @Test("c-bo-mcs's global backoff: LiTL's delays, 512 to 2^20 pauses")
    func testBackoffDelaysAreLiTLs() {
        var litl: UInt32 = 1 << 9
        var ours = BackoffTTASGlobal.minPauses
        for step in 0..<40 {
            #expect(ours == litl, "step \(step): \(ours) pauses, LiTL's loop \(litl)")
            if litl < (1 << 20) - 1 { litl *= 2 }
            ours = BackoffTTAS.nextDelay(ours, maxPauses: BackoffTTASGlobal.maxPauses)
        }
        #expect(ours == 1 << 20)
    }
}

/// Runs `rounds` on one node of a two-node lock (holder plus `rounds[i]` waiters, all on node 0) and
/// checks the node's pass budget after each round.
private func checkPassBudget<L: LockAlgorithm>(_ type: L.Type, options: String, rounds: [Int], expected: [UInt32]) throws {
    let specText = "\(L.descriptor.name):\(options.replacingOccurrences(of: ",", with: ":"))"
    let lock = try L(LockEnvironment(maxThreads: 8, nodeCount: 2, options: try LockSpec(parsing: specText).options))
    defer { lock.deallocate() }
    for (round, waiters) in rounds.enumerated() {
        let result = probeAcquisitionOrder(on: lock, waiterNodes: Array(repeating: 0, count: waiters))
        #expect(result.order == Array(0..<waiters), "\(specText): FIFO on one node")
        let budget = try #require(cohortBudget(lock, node: 0))
        #expect(budget == expected[round], "\(specText) round \(round): budget \(budget), expected \(expected[round])")
    }
}

/// The pass budget in node `node`'s cohort record (nil for a lock that is not a cohort lock).
private func cohortBudget<L: LockAlgorithm>(_ lock: L, node: Int) -> UInt32? {
    func read<D: CohortDefinition>(_ cohort: CohortLock<D>) -> UInt32 {
        (cohort.nodes + node * CohortLock<D>.nodeStride + CohortLock<D>.recordOffset)
            .assumingMemoryBound(to: UInt32.self)[1]
    }
    if let c = lock as? CBOMCSLock { return read(c) }
    if let c = lock as? CTKTTKTLock { return read(c) }
    if let c = lock as? CMCSMCSLock { return read(c) }
    return nil
}

// The generic validator runs two nodes at the defaults, where most tenures end because the node's
// queue drained. Small limits end tenures on the limit, over and over, which is where the global lock
// (and c-mcs-mcs's and hmcs's per-node global queue node) changes hands between threads of a node;
// three nodes put two heads on the global lock. Counter exact, a third by trylock.
@Suite("Cohort stress", .serialized)
struct CohortStressTests {
    @Test("counter exact at 6 threads on 3 nodes with tenures of 1 to 3 acquisitions, both pass rules",
          arguments: CohortPolicyTests.hierarchical)
    func testSmallLimitsThreeNodes(lock: String) throws {
        let entry = try #require(LockRegistry.lookup(lock))
        let threads = 6
        let iterations = 5_000
        let specs = lock == "hmcs" ? [1, 2, 3].map { "hmcs:threshold=\($0)" }
            : [0, 1, 2].flatMap { limit in [0, 1].map { "\(lock):pass-limit=\(limit):pass-rule=\($0)" } }
        for spec in specs {
            let config = RunConfig(
                spec: try LockSpec(parsing: spec),
                threads: (0..<threads).map { ThreadSlot(index: $0, cpu: nil, node: $0 % 3) },
                nodeCount: 3,
                length: .iterations(perThread: iterations),
                sampleEvery: 0, trylockEvery: 3, stallTimeoutSeconds: 120)
            let result = try entry.run(config, MicrobenchmarkParameters(csLines: 2))
            #expect(result.status == .ok, "\(spec): \(result.status)")
            #expect(result.counter == UInt64(threads * iterations), "\(spec): counter \(result.counter)")
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
