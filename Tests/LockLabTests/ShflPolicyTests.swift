// Policy tests for ShflLock (shfl, shfl-b): each preset of the authors' code (sslab-gatech/shfllock,
// commit 0f3273ec; Shfl.swift's header) on the queued-order probe of CNAShflPolicyTests.swift, plus the
// pieces the probe cannot see: the role-passing draw, stealing by tryLock, and whether queued waiters
// close the fast path.
//
// The probe's waiters queue one at a time while a holder on node 0 holds the lock; the order in which
// they then acquire is the policy. With the default pass-one-in=1024 the shuffler hands its role on
// after ~1024 walks, and a shuffler with nothing to do walks again at once, so over the probe's gaps
// the role wanders: exact orders are checked with pass-one-in=0 (the role never passes by chance)
// and pass-one-in=1 (it always does), and the default is checked by the draw itself.

import CShims
import Foundation
import Testing
@testable import LockLab

/// Arrival nodes used throughout: alternating, starting on the holder's node.
private let shflAlternatingNodes = [0, 1, 0, 1, 0, 1]

/// Under the serialized parent of CNAShflPolicyTests.swift: the probes are timed.
extension CNAShflPolicyTests {
    @Suite("ShflLock policy")
    struct ShflPolicyTests {
        // Shuffling happens while the waiters wait, so give the shuffler time between arrivals (it does
        // not change the outcome, only the chance that an overloaded machine starves the shuffler).
        static let gap = 100

        // Each preset's defaults, as `list` and the CSV show them.
        @Test func testShflDefaultsAreTheAuthors() throws {
            #expect(try LockSpec(parsing: "shfl").options.csvText == "max-shuffles=0;no-steal=1;pass-one-in=1024")
            #expect(try LockSpec(parsing: "shfl-b").options.csvText
                    == "max-shuffles=0;no-steal=0;pass-one-in=1024;spin-limit=2700")
            // Their USE_COUNTER build.
            #expect(try LockSpec(parsing: "shfl:max-shuffles=256:pass-one-in=0").options.csvText
                    == "max-shuffles=256;no-steal=1;pass-one-in=0")
        }

        // The draw is the authors' xor_random (xorshift32 <<6 >>21 <<7, seeded thread index + 1): from
        // seed 1 the first value is 8385; masked with 1023 it is 0 about once in 1024 draws.
        @Test func testShflRolePassesOnceIn1024Walks() throws {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<ShflNode>.stride, alignment: 64)
            defer { raw.deallocate() }
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<ShflNode>.stride)
            let node = ShflNodePointer(raw)
            node.random.pointee = 1
            #expect(ShflLock.draw(node) == 8385)
            var passes = 0
            let draws = 1 << 20
            for _ in 0..<draws where ShflLock.draw(node) % 1024 == 0 { passes += 1 }
            // Expected 1024 (sd ~32).
            #expect(passes > 850 && passes < 1200, "\(passes) passes in \(draws) draws")
        }

        // pass-one-in=0, no count bound: W0 (first waiter, head) shuffles: it moves W2 behind itself
        // once W3 has linked behind W2 and appoints W2, which moves W4 once W5 has linked. The last
        // arrival (W5) is the tail and is never visited. Queue W0 W2 W4 W1 W3 W5.
        @Test func testShflServesHolderNodeFirst() throws {
            let result = try probeQueuedAcquisitionOrder(ShflLock.self, options: "pass-one-in=0",
                                                         waiterNodes: shflAlternatingNodes, gapMilliseconds: Self.gap)
            #expect(result.order == [0, 2, 4, 1, 3, 5])
            #expect(result.nodes == [0, 0, 0, 1, 1, 1])
        }

        // pass-one-in=1: every walk hands the role to the successor without moving anyone: FIFO.
        @Test func testShflRoleAlwaysPassingIsFIFO() throws {
            let result = try probeQueuedAcquisitionOrder(ShflLock.self, options: "pass-one-in=1",
                                                         waiterNodes: shflAlternatingNodes, gapMilliseconds: Self.gap)
            #expect(result.order == [0, 1, 2, 3, 4, 5])
        }

        // The defaults (the role passes by chance): every waiter acquires once.
        @Test func testShflDefaultsServeEveryWaiter() throws {
            let result = try probeQueuedAcquisitionOrder(ShflLock.self, waiterNodes: shflAlternatingNodes,
                                                         gapMilliseconds: Self.gap)
            #expect(result.order.sorted() == [0, 1, 2, 3, 4, 5])
        }

        // The counter build, max-shuffles=2:pass-one-in=0: W0's batch is {W0, W2} and full; the role
        // passes to W1, whose batch {W1, W3} (already adjacent) is full too; the role reaches W4,
        // which finds only W5 (the tail) behind it. Queue W0 W2 W1 W3 W4 W5: the lock leaves node 0
        // while W4 still waits there.
        @Test func testShflCountBoundSwitchesNodesEarly() throws {
            let result = try probeQueuedAcquisitionOrder(ShflLock.self, options: "max-shuffles=2,pass-one-in=0",
                                                         waiterNodes: shflAlternatingNodes, gapMilliseconds: Self.gap)
            #expect(result.order == [0, 2, 1, 3, 4, 5])
            #expect(result.nodes == [0, 0, 1, 1, 0, 1])
        }

        // The shuffler never visits the queue's tail (its `next` is about to be written by an
        // arrival): behind W0 (node 0, the shuffler), W2 is the tail in [0, 1, 0] and stays behind W1;
        // one more arrival makes it movable.
        @Test func testShflMovesOnlyWaitersWithASuccessor() throws {
            let short = try probeQueuedAcquisitionOrder(ShflLock.self, options: "pass-one-in=0", waiterNodes: [0, 1, 0],
                                                        gapMilliseconds: Self.gap)
            #expect(short.order == [0, 1, 2])
            let longer = try probeQueuedAcquisitionOrder(ShflLock.self, options: "pass-one-in=0", waiterNodes: [0, 1, 0, 1],
                                                         gapMilliseconds: Self.gap)
            #expect(longer.order == [0, 2, 1, 3])
        }

        // max-shuffles=1: every batch is full at once; nobody moves: FIFO.
        @Test func testShflWithoutShufflingIsFIFO() throws {
            let result = try probeQueuedAcquisitionOrder(ShflLock.self, options: "max-shuffles=1",
                                                         waiterNodes: shflAlternatingNodes, gapMilliseconds: Self.gap)
            #expect(result.order == [0, 1, 2, 3, 4, 5])
        }

        // A holder on node 1 does not matter: the first waiter (W0, node 0) shuffles for its own node.
        // Unlike CNA, the policy follows the head of the queue, not the holder.
        @Test func testShflGroupsForTheHeadsNode() throws {
            let result = try probeQueuedAcquisitionOrder(ShflLock.self, options: "pass-one-in=0", holderNode: 1,
                                                         waiterNodes: shflAlternatingNodes, gapMilliseconds: Self.gap)
            #expect(result.order == [0, 2, 4, 1, 3, 5])
        }

        // tryLock CASes the locked byte alone (aqs_mutex_trylock): it takes a free lock even when a
        // queued waiter has closed the fast path (noSteal set), and leaves noSteal as it was.
        @Test func testShflTrylockStealsPastTheQueue() throws {
            let lock = ShflLock(LockEnvironment(maxThreads: 2, nodeCount: 1, options: defaultOptions(ShflLock.self)))
            defer { lock.deallocate() }
            var a = lock.makeContext(for: ThreadSlot(index: 0, cpu: 0, node: 0))
            var b = lock.makeContext(for: ThreadSlot(index: 1, cpu: 0, node: 0))
            defer {
                lock.freeContext(&a)
                lock.freeContext(&b)
            }
            #expect(lock.tryLock(&a))
            #expect(lock.word.pointee == ShflLock.lockedBit)
            #expect(!lock.tryLock(&b))
            lock.unlock(&a)
            #expect(lock.word.pointee == 0)
            lock.word.pointee = ShflLock.noStealBit
            #expect(lock.tryLock(&b))
            #expect(lock.word.pointee == ShflLock.noStealBit | ShflLock.lockedBit)
            lock.unlock(&b)
            #expect(lock.word.pointee == ShflLock.noStealBit)
            lock.word.pointee = 0
        }

        // no-steal: shfl's first waiter closes the fast path (noSteal set while it queues); shfl-b's
        // never does, so running threads keep stealing while queued waiters sleep.
        @Test(arguments: [("shfl", true), ("shfl-b", false), ("shfl:no-steal=0", false), ("shfl-b:no-steal=1", true)])
        func testShflQueuedWaiterClosesFastPathOnlyWithNoSteal(lock: String, closes: Bool) throws {
            let spec = try LockSpec(parsing: lock)
            if spec.name == "shfl" {
                #expect(try queuedWord(ShflLock.self, spec) == (closes ? ShflLock.noStealBit | ShflLock.lockedBit : ShflLock.lockedBit))
            } else {
                #expect(try queuedWord(ShflBlockingLock.self, spec)
                        == (closes ? ShflBlockingLock.noStealBit | ShflBlockingLock.lockedBit : ShflBlockingLock.lockedBit))
            }
        }

        /// The lock word while a holder holds the lock and one waiter is queued behind it.
        private func queuedWord<W: WaitingPolicy>(_ type: Shfl<W>.Type, _ spec: LockSpec) throws -> UInt32 {
            let lock = Shfl<W>(LockEnvironment(maxThreads: 2, nodeCount: 1, options: spec.options))
            var holder = lock.makeContext(for: ThreadSlot(index: 0, cpu: 0, node: 0))
            lock.lock(&holder)
            nonisolated(unsafe) let shared = lock
            let done = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
            done.initialize(to: 0)
            nonisolated(unsafe) let doneFlag = done
            let thread = Thread {
                var context = shared.makeContext(for: ThreadSlot(index: 1, cpu: 0, node: 0))
                shared.lock(&context)
                shared.unlock(&context)
                shared.freeContext(&context)
                cshims_u32_store_release(doneFlag, 1)
            }
            thread.stackSize = 1 << 20
            thread.start()
            let deadline = Date().addingTimeInterval(30)
            while cshims_ptr_load_acquire(lock.tail) == nil && Date() < deadline { usleep(100) }
            // The first waiter sets noSteal right after its tail exchange: give it time.
            usleep(20_000)
            let word = cshims_u32_load_acquire(lock.word)
            lock.unlock(&holder)
            while cshims_u32_load_acquire(done) == 0 && Date() < deadline { usleep(100) }
            let finished = cshims_u32_load_acquire(done) == 1
            #expect(finished, "the waiter never acquired")
            if finished {
                lock.freeContext(&holder)
                lock.deallocate()
                done.deallocate()
            }
            return word
        }
    }
}
