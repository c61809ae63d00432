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

@Suite("CNA policy", .serialized)
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
