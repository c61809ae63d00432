// Policy tests for the NUMA-aware locks (cna, shfl) and the concurrency-restricting one (malthusian),
// on the policy probe (PolicyProbe.swift, in the copy at the end of this file that waits for each
// waiter to be queued): a holder on node 0 holds the lock while waiters queue one at a time from
// known nodes; the order in which they then acquire is the lock's policy.
//
// The expected orders are worked out from each algorithm in the comments. Nodes come only from the
// ThreadSlot the probe passes (every probe thread says cpu 0), so these tests also show that the locks
// take the node from the placement, not from the CPU.

import CShims
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
        // The exact orders below turn the kernel's time threshold off (threshold-ns=0) unless the test
        // is about it: at its default of 10 ms, a waiter that the scheduler keeps off the CPU for 10 ms
        // (this suite runs beside the mutual-exclusion suite on 2 CPUs) legitimately makes the lock
        // switch nodes early, and the order would depend on the load.
        static let noTimeLimit = "threshold-ns=0"

        // H (node 0) holds; queue H W0 W1 W2 W3 W4 W5 with nodes 0 1 0 1 0 1.
        // H -> W0 (same node). W0 skips W1 (parked) -> W2. W2 skips W3 -> W4. W4 finds no node-0 waiter:
        // the secondary queue W1 W3 goes in front of W5 -> W1 -> W3 -> W5.
        @Test func testCNAServesHolderNodeFirst() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, options: Self.noTimeLimit,
                                                         waiterNodes: alternatingNodes)
            #expect(result.order == [0, 2, 4, 1, 3, 5])
            #expect(result.nodes == [0, 0, 0, 1, 1, 1])
        }

        // Default options (10 ms time threshold on): the node-0 waiters still go first unless the machine
        // stalls a waiter for 10 ms, so only the first acquisition and the set are exact.
        @Test func testCNADefaultsServeHolderNodeFirst() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, waiterNodes: alternatingNodes)
            #expect(result.order.sorted() == [0, 1, 2, 3, 4, 5])
            #expect(result.order.prefix(2) == [0, 2])
        }

        // threshold=1: one local handoff may pass a parked waiter. W0 parks W1 and passes to W2 (count 1);
        // W2 has reached the threshold and splices W1 back although W4 (node 0) waits: W1 -> W3 (same
        // node, nothing parked). W3 parks W4 -> W5 (count 1); W5 is last: W4.
        @Test func testCNACountThresholdSwitchesNodesEarly() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, options: "threshold=1,\(Self.noTimeLimit)",
                                                         waiterNodes: alternatingNodes)
            #expect(result.order == [0, 2, 1, 3, 5, 4])
            #expect(result.nodes == [0, 0, 1, 1, 1, 0])
        }

        // threshold=0: the lock never stays local: MCS order.
        @Test func testCNAZeroThresholdIsFIFO() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, options: "threshold=0",
                                                         waiterNodes: alternatingNodes)
            #expect(result.order == [0, 1, 2, 3, 4, 5])
        }

        // threshold-ns=1000 and each waiter holds 2 ms: when W2 releases, the secondary queue (W1, formed
        // at W0's release) is older than 1 us, so it goes back in front: the same order as threshold=1.
        // (Load can only make the queue older, so this order does not depend on it.)
        @Test func testCNATimeThresholdSwitchesNodes() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, options: "threshold-ns=1000",
                                                         waiterNodes: alternatingNodes, holdMicroseconds: 2000)
            #expect(result.order == [0, 2, 1, 3, 5, 4])
        }

        // The same hold time with the time threshold off: node 0 first again.
        @Test func testCNAWithoutTimeThresholdStaysLocal() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, options: Self.noTimeLimit,
                                                         waiterNodes: alternatingNodes, holdMicroseconds: 2000)
            #expect(result.order == [0, 2, 4, 1, 3, 5])
        }

        // The holder on node 1 prefers node 1: H parks W0 and passes to W1; W1 parks W2 -> W3; W3 parks
        // W4 -> W5; W5 is last: the secondary queue W0 W2 W4 becomes the main queue.
        @Test func testCNAFollowsTheHolderNode() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, options: Self.noTimeLimit, holderNode: 1,
                                                         waiterNodes: alternatingNodes)
            #expect(result.order == [1, 3, 5, 0, 2, 4])
        }

        @Test func testCNAOptionsReachTheCSV() throws {
            let spec = try LockSpec(parsing: "cna:threshold=1")
            #expect(spec.options.csvText == "threshold=1;threshold-ns=10000000")
            #expect(try LockSpec(parsing: "cna").options.csvText == "threshold=65536;threshold-ns=10000000")
        }
    }

    @Suite("Malthusian policy")
    struct MalthusianPolicyTests {
        // H holds; W0..W5 queue. H culls W0 (W1 behind it) -> W1; W1 culls W2 -> W3; W3 culls W4 -> W5.
        // W5 has no successor: the newest passive thread, W4, then W2, then W0 (LIFO re-admission).
        @Test func testMalthusianCullsSurplusWaiters() throws {
            var culled: UInt64 = 0
            let result = try probeQueuedAcquisitionOrder(
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
            let result = try probeQueuedAcquisitionOrder(
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
            let result = try probeQueuedAcquisitionOrder(MalthusianLock.self, waiterNodes: alternatingNodes) { lock in
                culled = lock.culledCount
            }
            #expect(result.order.sorted() == [0, 1, 2, 3, 4, 5])
            #expect(result.order != [0, 1, 2, 3, 4, 5])
            #expect(culled > 0)
        }
    }
}

// MARK: - The probe, made exact about arrival order

/// A lock whose queue tail the probe can read, so that it knows when a waiter has really queued.
protocol ProbeQueueVisible: LockAlgorithm {
    /// The queue's tail node now (racy read, for the probe only).
    var probeQueueTail: UnsafeMutableRawPointer? { get }
    /// The queue node a context enqueues.
    static func probeQueueNode(_ context: Context) -> UnsafeMutableRawPointer
}

extension CNA: ProbeQueueVisible {
    var probeQueueTail: UnsafeMutableRawPointer? { cshims_ptr_load_acquire(tail) }
    static func probeQueueNode(_ context: Context) -> UnsafeMutableRawPointer { context.node.raw }
}

extension Shfl: ProbeQueueVisible {
    var probeQueueTail: UnsafeMutableRawPointer? { cshims_ptr_load_acquire(tail) }
    static func probeQueueNode(_ context: Context) -> UnsafeMutableRawPointer { context.node.raw }
}

extension Malthusian: ProbeQueueVisible {
    var probeQueueTail: UnsafeMutableRawPointer? { cshims_ptr_load_acquire(tail) }
    static func probeQueueNode(_ context: Context) -> UnsafeMutableRawPointer { context.node.raw }
}

/// Where each waiter's queue node is, published by the waiter before it calls lock().
final class ProbeQueueNodes: @unchecked Sendable {
    private let addresses: UnsafeMutablePointer<UInt64>
    init(count: Int) {
        addresses = .allocate(capacity: count)
        addresses.initialize(repeating: 0, count: count)
    }
    deinit { addresses.deallocate() }
    func publish(_ i: Int, _ node: UnsafeMutableRawPointer) {
        cshims_u64_store_release(addresses + i, UInt64(UInt(bitPattern: node)))
    }
    func address(_ i: Int) -> UInt64 { cshims_u64_load_acquire(addresses + i) }
}

/// `probeAcquisitionOrder` (PolicyProbe.swift), copied and changed in two ways so that PolicyProbe.swift
/// stays as it is:
///  - the next waiter starts only once the previous one is the queue's tail (not merely about to
///    call lock()): under load (the mutual-exclusion suite runs beside this one on 2 CPUs) a waiter
///    can be descheduled for longer than the gap between announcing itself and swapping itself in,
///    and then arrives out of order; the gap that follows covers its link into the queue and gives
///    ShflLock's shuffler time to run;
///  - `inspect` sees the lock once every waiter is done, before it is freed (the test counters).
func probeQueuedAcquisitionOrder<L: ProbeQueueVisible>(
    _ type: L.Type, options: String = "", nodeCount: Int = 2, holderNode: Int = 0, waiterNodes: [Int],
    gapMilliseconds: Int = 40, holdMicroseconds: Int = 0, timeoutSeconds: Double = 60,
    inspect: (L) -> Void = { _ in }
) throws -> ProbeResult {
    let specText = options.isEmpty ? L.descriptor.name : "\(L.descriptor.name):\(options.replacingOccurrences(of: ",", with: ":"))"
    let spec = try LockSpec(parsing: specText)
    let waiters = waiterNodes.count
    let lock = try L(LockEnvironment(maxThreads: waiters + 1, nodeCount: nodeCount, options: spec.options))
    let log = ProbeLog(capacity: waiters)
    let queueNodes = ProbeQueueNodes(count: waiters)
    var holder = lock.makeContext(for: ThreadSlot(index: 0, cpu: 0, node: holderNode))
    lock.lock(&holder)
    let deadline = Date().addingTimeInterval(timeoutSeconds)

    nonisolated(unsafe) let sharedLock = lock
    for (i, node) in waiterNodes.enumerated() {
        let thread = Thread {
            let lock = sharedLock
            var context = lock.makeContext(for: ThreadSlot(index: i + 1, cpu: 0, node: node))
            queueNodes.publish(i, L.probeQueueNode(context))
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
        let mine = queueNodes.address(i)
        while lock.probeQueueTail.map({ UInt64(UInt(bitPattern: $0)) }) != mine {
            if Date() > deadline {
                Issue.record("\(L.descriptor.name): waiter \(i) did not queue within \(timeoutSeconds) s")
                return ProbeResult(order: log.order, nodes: log.order.map { waiterNodes[$0] })
            }
            usleep(100)
        }
        usleep(UInt32(gapMilliseconds * 1000))
    }
    lock.unlock(&holder)
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
