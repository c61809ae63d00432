// Policy tests for the NUMA-aware locks (cna, shfl) and the concurrency-restricting one (malthusian),
// on the policy probe (PolicyProbe.swift): a holder on node 0 holds the lock while waiters queue one
// at a time from known nodes; the order in which they then acquire is the lock's policy.
//
// The expected orders are worked out from each algorithm in the comments. Nodes come only from the
// ThreadSlot the probe passes (every probe thread says cpu 0), so these tests also show that the locks
// take the node from the placement, not from the CPU.

import Foundation
import Synchronization
import Testing
@testable import LockLab

/// Arrival nodes used throughout: alternating, starting on the holder's node.
private let alternatingNodes = [0, 1, 0, 1, 0, 1]

/// One serialized parent: the probes are timed, and two of them side by side on a 2-CPU machine
/// could starve a waiter (or ShflLock's shuffler) long enough to change an order.
@Suite("CNA, ShflLock and Malthusian policies", .serialized)
struct CNAShflPolicyTests {}

extension CNAShflPolicyTests {
    @Suite("CNA policy")
    struct CNAPolicyTests {
        // H (node 0) holds; queue H W0 W1 W2 W3 W4 W5 with nodes 0 1 0 1 0 1.
        // H -> W0 (same node). W0 skips W1 (parked) -> W2. W2 skips W3 -> W4. W4 finds no node-0 waiter:
        // the secondary queue W1 W3 goes in front of W5 -> W1 -> W3 -> W5.
        @Test func testCNAServesHolderNodeFirst() throws {
            let result = try probeAcquisitionOrder(CNALock.self, waiterNodes: alternatingNodes)
            #expect(result.order == [0, 2, 4, 1, 3, 5])
            #expect(result.nodes == [0, 0, 0, 1, 1, 1])
        }

        // threshold=1: one local handoff may pass a parked waiter. W0 parks W1 and passes to W2 (count 1);
        // W2 has reached the threshold and splices W1 back although W4 (node 0) waits: W1 -> W3 (same
        // node, nothing parked). W3 parks W4 -> W5 (count 1); W5 is last: W4.
        @Test func testCNACountThresholdSwitchesNodesEarly() throws {
            let result = try probeAcquisitionOrder(CNALock.self, options: "threshold=1", waiterNodes: alternatingNodes)
            #expect(result.order == [0, 2, 1, 3, 5, 4])
            #expect(result.nodes == [0, 0, 1, 1, 1, 0])
        }

        // threshold=0: the lock never stays local: MCS order.
        @Test func testCNAZeroThresholdIsFIFO() throws {
            let result = try probeAcquisitionOrder(CNALock.self, options: "threshold=0", waiterNodes: alternatingNodes)
            #expect(result.order == [0, 1, 2, 3, 4, 5])
        }

        // threshold-ns=1000 and each waiter holds 2 ms: when W2 releases, the secondary queue (W1, formed
        // at W0's release) is older than 1 us, so it goes back in front: the same order as threshold=1.
        @Test func testCNATimeThresholdSwitchesNodes() throws {
            let result = try probeAcquisitionOrder(CNALock.self, options: "threshold-ns=1000",
                                                   waiterNodes: alternatingNodes, holdMicroseconds: 2000)
            #expect(result.order == [0, 2, 1, 3, 5, 4])
        }

        // The same hold time with the time threshold off: node 0 first again.
        @Test func testCNAWithoutTimeThresholdStaysLocal() throws {
            let result = try probeAcquisitionOrder(CNALock.self, options: "threshold-ns=0",
                                                   waiterNodes: alternatingNodes, holdMicroseconds: 2000)
            #expect(result.order == [0, 2, 4, 1, 3, 5])
        }

        // The holder on node 1 prefers node 1: W1 W3 W5 first (W0 parked at H's release).
        @Test func testCNAFollowsTheHolderNode() throws {
            let result = try probeAcquisitionOrder(CNALock.self, holderNode: 1, waiterNodes: alternatingNodes)
            #expect(result.order == [1, 3, 5, 0, 2, 4])
        }

        @Test func testCNAOptionsReachTheCSV() throws {
            let spec = try LockSpec(parsing: "cna:threshold=1")
            #expect(spec.options.csvText == "threshold=1;threshold-ns=10000000")
            #expect(try LockSpec(parsing: "cna").options.csvText == "threshold=65536;threshold-ns=10000000")
        }
    }

    @Suite("ShflLock policy")
    struct ShflPolicyTests {
        // Shuffling happens while the waiters wait, so give the shuffler time between arrivals (it does
        // not change the outcome, only the chance that an overloaded machine starves the shuffler).
        static let gap = 100

        // W0 (first waiter, head) shuffles: it moves W2 behind itself once W3 has linked behind W2 and
        // appoints W2, which moves W4 once W5 has linked. The last arrival (W5) is the tail and is never
        // moved. Queue W0 W2 W4 W1 W3 W5.
        @Test func testShflServesHolderNodeFirst() throws {
            let result = try probeAcquisitionOrder(ShflLock.self, waiterNodes: alternatingNodes, gapMilliseconds: Self.gap)
            #expect(result.order == [0, 2, 4, 1, 3, 5])
            #expect(result.nodes == [0, 0, 0, 1, 1, 1])
        }

        // max-shuffles=2: W0's batch is {W0, W2} and full; the role passes to W1, whose batch {W1, W3}
        // (already adjacent) is full too; the role reaches W4, which finds only W5 (the tail) behind it.
        // Queue W0 W2 W1 W3 W4 W5: the lock leaves node 0 while W4 still waits there.
        @Test func testShflBoundSwitchesNodesEarly() throws {
            let result = try probeAcquisitionOrder(ShflLock.self, options: "max-shuffles=2",
                                                   waiterNodes: alternatingNodes, gapMilliseconds: Self.gap)
            #expect(result.order == [0, 2, 1, 3, 4, 5])
            #expect(result.nodes == [0, 0, 1, 1, 0, 1])
        }

        // max-shuffles=1: every batch is full at once; nobody moves: FIFO.
        @Test func testShflWithoutShufflingIsFIFO() throws {
            let result = try probeAcquisitionOrder(ShflLock.self, options: "max-shuffles=1",
                                                   waiterNodes: alternatingNodes, gapMilliseconds: Self.gap)
            #expect(result.order == [0, 1, 2, 3, 4, 5])
        }

        // A holder on node 1 does not matter: the first waiter (W0, node 0) shuffles for its own node.
        // Unlike CNA, the policy follows the head of the queue, not the holder.
        @Test func testShflGroupsForTheHeadsNode() throws {
            let result = try probeAcquisitionOrder(ShflLock.self, holderNode: 1, waiterNodes: alternatingNodes,
                                                   gapMilliseconds: Self.gap)
            #expect(result.order == [0, 2, 4, 1, 3, 5])
        }

        @Test func testShflTrylockRespectsTheQueue() throws {
            let lock = try ShflLock(LockEnvironment(maxThreads: 2, nodeCount: 1, options: defaultOptions(ShflLock.self)))
            defer { lock.deallocate() }
            var a = lock.makeContext(for: ThreadSlot(index: 0, cpu: 0, node: 0))
            var b = lock.makeContext(for: ThreadSlot(index: 1, cpu: 0, node: 0))
            defer {
                lock.freeContext(&a)
                lock.freeContext(&b)
            }
            #expect(lock.tryLock(&a))
            #expect(lock.word.pointee == ShflLock.lockedBit)
            lock.unlock(&a)
            #expect(lock.word.pointee == 0)
            // A queued waiter closes the fast path: free but noSteal set, so trylock fails.
            lock.word.pointee = ShflLock.noStealBit
            #expect(!lock.tryLock(&b))
            lock.word.pointee = 0
            #expect(lock.tryLock(&b))
            lock.unlock(&b)
        }
    }

    @Suite("Malthusian policy")
    struct MalthusianPolicyTests {
        // H holds; W0..W5 queue. H culls W0 (W1 behind it) -> W1; W1 culls W2 -> W3; W3 culls W4 -> W5.
        // W5 has no successor: the newest passive thread, W4, then W2, then W0 (LIFO re-admission).
        @Test func testMalthusianCullsSurplusWaiters() throws {
            var culled: UInt64 = 0
            let result = try probeAcquisitionOrderInspecting(
                MalthusianLock.self, options: "readmit-one-in=0", waiterNodes: alternatingNodes
            ) { lock in culled = lock.culledCount }
            #expect(result.order == [1, 3, 5, 4, 2, 0])
            #expect(culled == 3)
        }

        // readmit-one-in=1: every release re-admits the eldest passive thread first, so each culled
        // waiter goes right after the one that overtook it.
        @Test func testMalthusianReadmitsTheEldestByChance() throws {
            var culled: UInt64 = 0
            var readmitted: UInt64 = 0
            let result = try probeAcquisitionOrderInspecting(
                MalthusianLock.self, options: "readmit-one-in=1", waiterNodes: alternatingNodes
            ) { lock in
                culled = lock.culledCount
                readmitted = lock.readmittedByChanceCount
            }
            #expect(result.order == [1, 0, 3, 2, 5, 4])
            #expect(culled == 3)
            #expect(readmitted == 3)
        }

        // Defaults: not FIFO, some waiters culled, and every waiter still acquires.
        @Test func testMalthusianEveryThreadAcquires() throws {
            var culled: UInt64 = 0
            let result = try probeAcquisitionOrderInspecting(MalthusianLock.self, waiterNodes: alternatingNodes) { lock in
                culled = lock.culledCount
            }
            #expect(result.order.sorted() == [0, 1, 2, 3, 4, 5])
            #expect(result.order != [0, 1, 2, 3, 4, 5])
            #expect(culled > 0)
        }
    }
}

/// `probeAcquisitionOrder` (PolicyProbe.swift) with a look at the lock once every waiter is done,
/// before it is freed: the same probe, copied so that PolicyProbe.swift stays as it is.
func probeAcquisitionOrderInspecting<L: LockAlgorithm>(
    _ type: L.Type, options: String = "", nodeCount: Int = 2, holderNode: Int = 0, waiterNodes: [Int],
    gapMilliseconds: Int = 40, holdMicroseconds: Int = 0, timeoutSeconds: Double = 60,
    inspect: (L) -> Void
) throws -> ProbeResult {
    let specText = options.isEmpty ? L.descriptor.name : "\(L.descriptor.name):\(options.replacingOccurrences(of: ",", with: ":"))"
    let spec = try LockSpec(parsing: specText)
    let waiters = waiterNodes.count
    let lock = try L(LockEnvironment(maxThreads: waiters + 1, nodeCount: nodeCount, options: spec.options))
    let log = ProbeLog(capacity: waiters)
    var holder = lock.makeContext(for: ThreadSlot(index: 0, cpu: 0, node: holderNode))
    lock.lock(&holder)

    nonisolated(unsafe) let sharedLock = lock
    for (i, node) in waiterNodes.enumerated() {
        let thread = Thread {
            let lock = sharedLock
            var context = lock.makeContext(for: ThreadSlot(index: i + 1, cpu: 0, node: node))
            log.started.add(1, ordering: .acquiringAndReleasing)
            lock.lock(&context)
            log.order.append(i)
            if holdMicroseconds > 0 { usleep(UInt32(holdMicroseconds)) }
            lock.unlock(&context)
            lock.freeContext(&context)
            log.finished.add(1, ordering: .acquiringAndReleasing)
        }
        thread.stackSize = 1 << 20
        thread.start()
        while log.started.load(ordering: .acquiring) < i + 1 { usleep(100) }
        usleep(UInt32(gapMilliseconds * 1000))
    }
    lock.unlock(&holder)
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    while log.finished.load(ordering: .acquiring) < waiters {
        if Date() > deadline {
            Issue.record("\(L.descriptor.name): waiters did not all acquire within \(timeoutSeconds) s (order so far \(log.order))")
            return ProbeResult(order: log.order, nodes: log.order.map { waiterNodes[$0] })
        }
        usleep(1000)
    }
    inspect(lock)
    lock.freeContext(&holder)
    lock.deallocate()
    return ProbeResult(order: log.order, nodes: log.order.map { waiterNodes[$0] })
}
