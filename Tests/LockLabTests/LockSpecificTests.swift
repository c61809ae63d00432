// Lock-specific checks beside the generic validator (MutualExclusionTests): registry consistency,
// option validation, Anderson's slot count, and CLH node ownership. Plain Foundation threads,
// unpinned, so these tests check the locks without the harness.
//
// Serialized: on a 2-core machine, oversubscribed FIFO spin locks hand over only ~10k times a second,
// and two such tests side by side would slow each other down by far more than 2x.

import Foundation
import Synchronization
import Testing
@testable import LockLab

// MARK: - Helpers

/// Every declared option of `L` at its default.
func defaultOptions<L: LockAlgorithm>(_ type: L.Type) -> LockOptions {
    var values: [String: Int] = [:]
    for spec in L.descriptor.options { values[spec.key] = spec.defaultValue }
    return LockOptions(values)
}

func makeLock<L: LockAlgorithm>(_ type: L.Type, maxThreads: Int) throws -> L {
    try L(LockEnvironment(maxThreads: maxThreads, nodeCount: 1, options: defaultOptions(type)))
}

/// A thread slot for an unpinned test thread (no lock here reads `cpu`).
func testSlot(_ index: Int) -> ThreadSlot {
    ThreadSlot(index: index, cpu: index % max(1, ProcessInfo.processInfo.activeProcessorCount), node: 0)
}

struct StressTimeout: Error, CustomStringConvertible {
    let lock: String
    let threads: Int
    var description: String { "\(lock) at \(threads) threads did not finish in time (deadlock or livelock?)" }
}

/// Holds threads until all have arrived, so that they contend from their first acquisition.
final class StartGate: @unchecked Sendable {
    let arrived = Atomic<Int>(0)
    let count: Int
    init(count: Int) { self.count = count }
    func arriveAndWait() {
        arrived.add(1, ordering: .acquiringAndReleasing)
        while arrived.load(ordering: .acquiring) < count { sched_yield() }
    }
}

/// Starts `threads` Foundation threads running `body(index)` and waits for all of them.
/// Throws `StressTimeout` if they are not done in `timeoutSeconds` (their memory is then leaked,
/// since spinning threads may still touch it).
func runThreads(_ threads: Int, lockName: String, timeoutSeconds: Double = 300,
                _ body: @escaping @Sendable (Int) -> Void) throws {
    let group = DispatchGroup()
    let gate = StartGate(count: threads)
    for index in 0..<threads {
        group.enter()
        let thread = Thread {
            gate.arriveAndWait()
            body(index)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    if group.wait(timeout: .now() + timeoutSeconds) == .timedOut {
        throw StressTimeout(lock: lockName, threads: threads)
    }
}

@Suite(.serialized)
struct LockSpecificTests {
    @Test("The registry's lock names are unique and the descriptors are consistent")
    func registryIsConsistent() {
        #expect(Set(LockRegistry.names).count == LockRegistry.names.count)
        #expect(SwiftMutexLock.descriptor.splitLockUnlock == false)
        #expect(SwiftMutexLock.descriptor.supportsTryLock == false)
        #expect(CLHLock.descriptor.supportsTryLock == false)
        #expect(CKCLHLock.descriptor.supportsTryLock == false)
    }

    @Test("backoff rejects max-backoff below min-backoff")
    func backoffRejectsInvertedBounds() throws {
        let spec = try LockSpec(parsing: "backoff:min-backoff=64:max-backoff=8")
        #expect(throws: LockError.self) {
            _ = try BackoffLock(LockEnvironment(maxThreads: 2, nodeCount: 1, options: spec.options))
        }
    }

    @Test("anderson gets maxThreads rounded up to a power of two slots")
    func andersonRoundsSlotsUp() throws {
        for (maxThreads, slots) in [(1, 1), (2, 2), (3, 4), (5, 8), (8, 8), (9, 16)] {
            let lock = try makeLock(AndersonLock.self, maxThreads: maxThreads)
            #expect(Int(lock.mask) + 1 == slots, "maxThreads \(maxThreads)")
            lock.deallocate()
        }
    }

    // CLH node ownership: nodes migrate between threads, so after a run the set of nodes owned by
    // the contexts plus the lock's tail must be the set that existed at the start, all distinct.

    @Test("clh: contexts and tail own distinct nodes, the same set as before the run")
    func clhNodesAreConserved() throws {
        try checkNodeConservation(CLHLock.self, threads: 4, iterations: 2000,
                                  node: { UnsafeMutableRawPointer($0.node) },
                                  tail: { $0.tail.pointee! })
    }

    @Test("ck-clh: contexts and queue own distinct nodes, the same set as before the run")
    func ckCLHNodesAreConserved() throws {
        try checkNodeConservation(CKCLHLock.self, threads: 4, iterations: 2000,
                                  node: { UnsafeMutableRawPointer($0.node!) },
                                  tail: { UnsafeMutableRawPointer($0.queue.pointee!) })
    }
}

func checkNodeConservation<L: LockAlgorithm>(
    _ type: L.Type, threads: Int, iterations: Int,
    node: @escaping (L.Context) -> UnsafeMutableRawPointer,
    tail: (L) -> UnsafeMutableRawPointer
) throws {
    let lock = try makeLock(type, maxThreads: threads)
    let contexts = UnsafeMutablePointer<L.Context>.allocate(capacity: threads)
    let initialNodes = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: threads)
    initialNodes.initialize(repeating: nil, count: threads)
    let initialTail = tail(lock)
    nonisolated(unsafe) let shared = (lock, contexts, initialNodes, node)
    try runThreads(threads, lockName: L.descriptor.name) { index in
        let (lock, contexts, initialNodes, node) = shared
        var context = lock.makeContext(for: testSlot(index))
        initialNodes[index] = node(context)
        for _ in 0..<iterations {
            lock.lock(&context)
            lock.unlock(&context)
        }
        (contexts + index).initialize(to: context)
    }
    let before = Set((0..<threads).map { initialNodes[$0]! } + [initialTail])
    let afterList = (0..<threads).map { node(contexts[$0]) } + [tail(lock)]
    #expect(before.count == threads + 1, "\(L.descriptor.name): initial nodes not distinct")
    #expect(Set(afterList).count == threads + 1, "\(L.descriptor.name): a node is owned twice after the run")
    #expect(Set(afterList) == before, "\(L.descriptor.name): the set of nodes changed")
    for i in 0..<threads { lock.freeContext(&contexts[i]) }
    lock.deallocate()
    contexts.deinitialize(count: threads)
    contexts.deallocate()
    initialNodes.deallocate()
}
