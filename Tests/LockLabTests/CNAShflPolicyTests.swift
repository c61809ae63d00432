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
        // Defaults are the paper's (keep_lock_local: flush with probability 2^-16, no count, no time
        // limit), so the exact orders below hold under any load: each thread's xorshift32 seed is its
        // index + 1, and the first draw of seeds 1..7 has non-zero low 16 bits (keep local), so no
        // release in these probes flushes by chance.

        // H (node 0) holds; queue H W0 W1 W2 W3 W4 W5 with nodes 0 1 0 1 0 1.
        // H -> W0 (same node). W0 skips W1 (parked) -> W2. W2 skips W3 -> W4. W4 finds no node-0 waiter:
        // the secondary queue W1 W3 goes in front of W5 -> W1 -> W3 -> W5.
        @Test func testCNAPaperDefaultsServeHolderNodeFirst() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, waiterNodes: alternatingNodes)
            #expect(result.order == [0, 2, 4, 1, 3, 5])
            #expect(result.nodes == [0, 0, 0, 1, 1, 1])
        }

        // The paper's preset: keep_lock_local is `pseudo_rand() & 0xffff`, false with probability
        // 2^-16. Over 2^22 draws of one thread's generator: 64 expected (Poisson, sd 8); and with
        // keep-local-bits=1 half of them. Deterministic (fixed seed), so the counts are exact.
        @Test func testCNAKeepLockLocalFlushesWithProbabilityTwoToTheMinus16() throws {
            func flushes(_ options: String, draws: Int) throws -> Int {
                let spec = try LockSpec(parsing: options)
                let lock = CNALock(LockEnvironment(maxThreads: 1, nodeCount: 2, options: spec.options))
                var context = lock.makeContext(for: ThreadSlot(index: 0, cpu: 0, node: 0))
                defer {
                    lock.freeContext(&context)
                    lock.deallocate()
                }
                var count = 0
                for _ in 0..<draws where !lock.keepLocalDraw(context.node) { count += 1 }
                return count
            }
            let paper = try flushes("cna", draws: 1 << 22)
            #expect((32...96).contains(paper), "\(paper) flushes in 2^22 releases; 2^-16 gives 64")
            let half = try flushes("cna:keep-local-bits=1", draws: 1 << 12)
            #expect((1900...2200).contains(half), "\(half) of 4096")
            #expect(try flushes("cna:keep-local-bits=0", draws: 100) == 100)
        }

        // threshold=1 (the early patches' count rule, 2^16 there): one local handoff may pass a parked
        // waiter. W0 parks W1 and passes to W2 (count 1); W2 has reached the threshold and splices W1
        // back although W4 (node 0) waits: W1 -> W3 (same node, nothing parked). W3 parks W4 -> W5
        // (count 1); W5 is last: W4.
        @Test func testCNACountThresholdSwitchesNodesEarly() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, options: "threshold=1",
                                                         waiterNodes: alternatingNodes)
            #expect(result.order == [0, 2, 1, 3, 5, 4])
            #expect(result.nodes == [0, 0, 1, 1, 1, 0])
        }

        // keep-local-bits=0: keep_lock_local is always false, the lock never stays local: MCS order.
        @Test func testCNANeverKeepingLocalIsFIFO() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, options: "keep-local-bits=0",
                                                         waiterNodes: alternatingNodes)
            #expect(result.order == [0, 1, 2, 3, 4, 5])
        }

        // The kernel's time rule (v15: threshold-ns=1000000), here 1 us, and each waiter holds 2 ms:
        // when W2 releases, the secondary queue (W1, formed at W0's release) is older than 1 us, so it
        // goes back in front: the same order as threshold=1. (Load can only make the queue older, so
        // this order does not depend on it.)
        @Test func testCNATimeThresholdSwitchesNodes() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, options: "threshold-ns=1000",
                                                         waiterNodes: alternatingNodes, holdMicroseconds: 2000)
            #expect(result.order == [0, 2, 1, 3, 5, 4])
        }

        // The same hold time with the paper's defaults (no time limit): node 0 first again.
        @Test func testCNAWithoutTimeThresholdStaysLocal() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, waiterNodes: alternatingNodes,
                                                         holdMicroseconds: 2000)
            #expect(result.order == [0, 2, 4, 1, 3, 5])
        }

        // The holder on node 1 prefers node 1: H parks W0 and passes to W1; W1 parks W2 -> W3; W3 parks
        // W4 -> W5; W5 is last: the secondary queue W0 W2 W4 becomes the main queue.
        @Test func testCNAFollowsTheHolderNode() throws {
            let result = try probeQueuedAcquisitionOrder(CNALock.self, holderNode: 1, waiterNodes: alternatingNodes)
            #expect(result.order == [1, 3, 5, 0, 2, 4])
        }

        @Test func testCNAOptionsReachTheCSV() throws {
            let spec = try LockSpec(parsing: "cna:threshold=1")
            #expect(spec.options.csvText == "keep-local-bits=16;threshold=1;threshold-ns=0")
            #expect(try LockSpec(parsing: "cna").options.csvText == "keep-local-bits=16;threshold=0;threshold-ns=0")
        }
    }

    @Suite("qspinlock-cna preset (v15)")
    struct QSpinlockCNAPresetTests {
        @Test func testQSpinlockCNADefaultsAreV15() throws {
            // numa_spinlock_threshold_ns = 1000000 (patch 4/6), SHUFFLE_REDUCTION_PROB_ARG = 7 (6/6).
            #expect(try LockSpec(parsing: "qspinlock-cna").options.csvText
                    == "shuffle-reduction-bits=7;threshold-ns=1000000")
        }

        // probably(7) is next_pseudo_random32 on a seed from 0: false (sort) when the low 7 bits are 0.
        // The LCG's low 7 bits run through all 128 values once per 128 steps, so exactly one head
        // wait in 128 sorts while nothing is parked: 127/128 skipped, as v15's comment says.
        @Test func testQSpinlockCNASortsOnceIn128WhileNothingIsParked() throws {
            let spec = try LockSpec(parsing: "qspinlock-cna")
            let environment = LockEnvironment(maxThreads: 1, nodeCount: 2, options: spec.options)
            let lock = try QSpinlockCNALock(environment)
            var context = lock.makeContext(for: ThreadSlot(index: 0, cpu: 0, node: 0))
            defer {
                lock.freeContext(&context)
                lock.deallocate()
            }
            #expect(cshims_u32_load_relaxed(context.node.seed) == 0)
            let policy = QSpinlockCNA(environment)
            var sorts: [Int] = []
            for i in 0..<(128 * 4) where !policy.probably(context.node) { sorts.append(i) }
            #expect(sorts.count == 4)
            #expect(Set(sorts.map { $0 % 128 }).count == 1, "one sort per 128 draws: \(sorts)")
            // The first draw from 0 is 1013904223, low 7 bits 95: skip.
            #expect(sorts.first != 0)
        }

        // With the v15 defaults, each head of this one-shot queue draws once from the zero seed
        // (1013904223 & 127 = 95: skip), so nobody sorts and the order is qspinlock's FIFO, where
        // shuffle-reduction-bits=0 (always sort) makes it NUMA-ordered
        // (QSpinlockCNAOrderTests.testHeadMovesRemoteWaitersToTheSecondaryQueue).
        @Test func testQSpinlockCNADefaultsSkipSortingWhileNothingIsParked() throws {
            #expect(try QSpinlockCNAOrderTests().queueOrder(QSpinlockCNA.self) == [0, 1, 2, 3, 4, 5, 6])
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
