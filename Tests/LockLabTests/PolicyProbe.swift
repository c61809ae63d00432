// The policy probe: which waiter does a lock serve next? A holder takes the lock, waiters arrive one
// at a time in a known order from known nodes, the holder releases, and the probe records the order
// in which the waiters acquire. FIFO locks must reproduce the arrival order; NUMA-aware locks must
// serve the holder's node first, then switch.
//
// Arrival order is made by time: each waiter announces itself just before calling lock(), and the
// next waiter starts only `gapMilliseconds` later, by which time the previous one has long swapped
// itself into the queue. Waiters are unpinned so the scheduler can run them all on 2 CPUs.

import Foundation
import Synchronization
import Testing
@testable import LockLab

/// What the probe saw.
struct ProbeResult {
    /// Waiter indices (0-based, in arrival order) in the order they acquired the lock.
    var order: [Int]
    /// The node of each acquisition, in the same order.
    var nodes: [Int]
}

final class ProbeLog: @unchecked Sendable {
    // Written only with the probed lock held: the lock under test is what orders these writes.
    var order: [Int] = []
    let started = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    init(capacity: Int) { order.reserveCapacity(capacity) }
}

/// Runs the probe on `L` with `options` (`"threshold=4"` style, may be empty).
/// - holderNode: the node of the thread holding the lock while the waiters queue.
/// - waiterNodes: node of each waiter, in arrival order.
/// - holdMicroseconds: how long each waiter holds the lock once it has it.
func probeAcquisitionOrder<L: LockAlgorithm>(
    _ type: L.Type, options: String = "", nodeCount: Int = 2, holderNode: Int = 0, waiterNodes: [Int],
    gapMilliseconds: Int = 40, holdMicroseconds: Int = 0, timeoutSeconds: Double = 60
) throws -> ProbeResult {
    let specText = options.isEmpty ? L.descriptor.name : "\(L.descriptor.name):\(options.replacingOccurrences(of: ",", with: ":"))"
    let spec = try LockSpec(parsing: specText)
    let lock = try L(LockEnvironment(maxThreads: waiterNodes.count + 1, nodeCount: nodeCount, options: spec.options))
    let result = probeAcquisitionOrder(on: lock, holderNode: holderNode, waiterNodes: waiterNodes,
                                       gapMilliseconds: gapMilliseconds, holdMicroseconds: holdMicroseconds,
                                       timeoutSeconds: timeoutSeconds)
    if result.order.count == waiterNodes.count { lock.deallocate() }
    return result
}

/// The probe on a lock already made (so that a test can run it again on the same lock and look at
/// the lock's state in between); the lock is left allocated.
func probeAcquisitionOrder<L: LockAlgorithm>(
    on lock: L, holderNode: Int = 0, waiterNodes: [Int],
    gapMilliseconds: Int = 40, holdMicroseconds: Int = 0, timeoutSeconds: Double = 60
) -> ProbeResult {
    let waiters = waiterNodes.count
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
    lock.freeContext(&holder)
    return ProbeResult(order: log.order, nodes: log.order.map { waiterNodes[$0] })
}

@Suite("Policy", .serialized)
struct PolicyTests {
    @Test func testMCSServesWaitersInArrivalOrder() throws {
        let result = try probeAcquisitionOrder(MCSLock.self, waiterNodes: [0, 1, 0, 1, 0, 1])
        #expect(result.order == [0, 1, 2, 3, 4, 5])
    }

    @Test func testTicketAndCLHServeWaitersInArrivalOrder() throws {
        #expect(try probeAcquisitionOrder(TicketLock.self, waiterNodes: [1, 0, 1, 0]).order == [0, 1, 2, 3])
        #expect(try probeAcquisitionOrder(CLHLock.self, waiterNodes: [1, 0, 1, 0]).order == [0, 1, 2, 3])
    }
}
