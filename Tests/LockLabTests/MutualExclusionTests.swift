// The generic validator: every registered executor (every lock), 1, 2, 4 and 8 threads (8
// oversubscribes this 2-CPU machine), each thread doing a fixed number of operations; a third of
// them by trylock where the lock offers it. The harness's plain counter and the workload's shared
// lines must come out exact, and every workload's model check runs after every run: the applied
// operations, logged in application order, replayed on the sequential model, every result
// matching, and the final contents equal to the model's. An executor registered in LockRegistry
// or a workload in WorkloadKind is covered here with no new test code.

import CShims
import Testing
@testable import LockLab

/// Acquisitions per thread: enough to interleave, few enough that oversubscribed FIFO spin locks
/// (about ten thousand handovers a second when preempted) finish in about a second. Under
/// ThreadSanitizer, a quarter at 3 threads and more: those runs are bound by preempted handovers,
/// which TSan slows further (the whole test took 100-180 s under TSan on a busy 2-core machine at
/// full count), and a missing happens-before shows in the first handovers as in the last.
func validatorIterations(threads: Int) -> Int {
    switch threads {
    case ...1: return 20_000
    case 2: return 10_000
    case 3...4: return ThreadSanitizer.scaled(1_500, divisor: 4)
    default: return ThreadSanitizer.scaled(500, divisor: 4)
    }
}

/// Operations per thread on the data-structure workloads: fewer (their critical sections are
/// longer, and every run is replayed on a model).
func workloadIterations(threads: Int) -> Int {
    switch threads {
    case ...1: return 2_000
    case 2: return 1_000
    case 3...4: return ThreadSanitizer.scaled(250, divisor: 2)
    default: return ThreadSanitizer.scaled(100, divisor: 2)
    }
}

func validate(_ entry: LockEntry, threads: Int, pinned: Bool = false,
              workload: WorkloadSpec = .micro(MicrobenchmarkParameters(csLines: 2)),
              iterations: Int? = nil) throws -> RawRunResult {
    let spec = try LockSpec(parsing: entry.descriptor.name)
    let cpus = max(1, Int(cshims_online_cpus()))
    let config = RunConfig(
        spec: spec,
        threads: (0..<threads).map { ThreadSlot(index: $0, cpu: pinned ? $0 % cpus : nil, node: $0 % 2) },
        nodeCount: 2,
        length: .iterations(perThread: iterations ?? validatorIterations(threads: threads)),
        sampleEvery: 7,
        trylockEvery: entry.descriptor.supportsTryLock ? 3 : 0,
        stallTimeoutSeconds: 120,
        // An executor's server threads, unpinned like the clients (pinned runs share CPUs anyway).
        helpers: (0..<entry.descriptor.helperThreads).map { ThreadSlot(index: threads + $0, cpu: nil, node: 0) },
        logOperations: true)
    return try entry.run(config, workload)
}

@Suite(.serialized)
struct MutualExclusionTests {
    @Test("plain counter exact under every lock", arguments: LockRegistry.lockNames)
    func counterIsExact(lock: String) throws {
        try ThreadSanitizer.skipIfBlind(lock)
        let entry = try #require(LockRegistry.lookup(lock))
        for threads in [1, 2, 4, 8] where threads <= (entry.descriptor.maxThreads ?? .max) {
            let result = try validate(entry, threads: threads)
            let expected = UInt64(threads * validatorIterations(threads: threads))
            #expect(result.status == .ok, "\(lock) at \(threads) threads: \(result.status)")
            #expect(result.counter == expected, "\(lock) at \(threads) threads: counter \(result.counter), expected \(expected)")
            #expect(result.threads.allSatisfy { $0.totalOps == UInt64(validatorIterations(threads: threads)) })
        }
    }

    @Test("every workload's model check under every lock, 1 to 8 threads", arguments: LockRegistry.lockNames)
    func workloadModelsHold(lock: String) throws {
        try ThreadSanitizer.skipIfBlind(lock)
        let entry = try #require(LockRegistry.lookup(lock))
        for kind in WorkloadKind.allCases where kind != .micro {
            // Small key ranges: hits, misses, inserts into and deletes from a populated structure.
            let text = kind == .hashtable || kind == .list ? "\(kind.rawValue):keys=64" : kind.rawValue
            let workload = try WorkloadSpec(parsing: text)
            // A pairing the plan refuses (seqlock's retried reads on a structure whose reads must
            // not see an update): ReadSharingTests checks the refusal.
            if workload.pairingRefusal(try LockSpec(parsing: lock)) != nil { continue }
            for threads in [1, 2, 4, 8] where threads <= (entry.descriptor.maxThreads ?? .max) {
                let n = workloadIterations(threads: threads)
                let result = try validate(entry, threads: threads, workload: workload, iterations: n)
                #expect(result.status == .ok, "\(lock) on \(workload) at \(threads) threads: \(result.status) \(result.failure ?? "")")
                // A reader-sharing executor's reads do not go through the counter: it counts updates.
                let reads = entry.readSharing == .exclusive ? 0 : result.threads.reduce(UInt64(0)) { $0 + $1.totalReads }
                #expect(result.counter == UInt64(threads * n) - reads, "\(lock) on \(workload) at \(threads) threads: counter \(result.counter), \(reads) reads")
            }
        }
    }

    @Test("pinned, oversubscribed 2x: counter exact", arguments: LockRegistry.lockNames)
    func pinnedOversubscribed(lock: String) throws {
        try ThreadSanitizer.skipIfBlind(lock)
        let entry = try #require(LockRegistry.lookup(lock))
        let threads = 2 * max(1, Int(cshims_online_cpus()))
        guard threads <= (entry.descriptor.maxThreads ?? .max) else { return }
        let result = try validate(entry, threads: threads, pinned: true)
        #expect(result.status == .ok)
        #expect(result.counter == UInt64(threads * validatorIterations(threads: threads)))
    }

    @Test("trylock succeeds on a free lock and fails on a held one", arguments: LockRegistry.lockNames)
    func trylockSemantics(lock: String) throws {
        let entry = try #require(LockRegistry.lookup(lock))
        guard entry.descriptor.supportsTryLock, entry.descriptor.splitLockUnlock,
              (entry.descriptor.maxThreads ?? 2) >= 2 else { return }
        guard let type = entry.type else { return }
        try checkTrylock(type)
    }

    @Test("the validator catches a lock that does not exclude",
          .enabled(if: !ThreadSanitizer.isActive, "races on purpose: ThreadSanitizer would report it"))
    func validatorCatchesBrokenLock() throws {
        // Two threads that never overlap lose no update (a loaded machine can run them one after
        // the other), so a lock that excludes nothing is only bound to be caught eventually: up to
        // ten runs, each its own chance. Seen once on a busy 2-core machine: 4000000 of 4000000.
        let spec = try LockSpec(parsing: "no-lock")
        let config = RunConfig(
            spec: spec, threads: (0..<2).map { ThreadSlot(index: $0, cpu: nil, node: 0) },
            length: .iterations(perThread: 2_000_000), sampleEvery: 0)
        var attempts = 0
        var result: RawRunResult
        repeat {
            attempts += 1
            result = try Harness.measure(NotALock.self, workload: Microbenchmark(.init(csLines: 4), memory: LabMemory()),
                                     config: config)
        } while result.status == .ok && attempts < 10
        #expect(result.status == .mutexViolation, "no lost update in \(attempts) runs")
        // Caught by the plain counter, or by the workload's lines (which lost updates the counter kept).
        #expect(result.counter < 4_000_000 || result.failure?.contains("micro: line") == true, "\(result.failure ?? "")")
    }
}

/// Takes the lock with one context, then tries with another: must fail; after release, succeed.
func checkTrylock<L: LockAlgorithm>(_ type: L.Type) throws {
    let lock = try L(LockEnvironment(maxThreads: 2, nodeCount: 1, options: try LockSpec(parsing: L.descriptor.name).options))
    defer { lock.deallocate() }
    var a = lock.makeContext(for: ThreadSlot(index: 0, cpu: 0, node: 0))
    var b = lock.makeContext(for: ThreadSlot(index: 1, cpu: 0, node: 0))
    defer {
        lock.freeContext(&a)
        lock.freeContext(&b)
    }
    #expect(lock.tryLock(&a), "\(L.descriptor.name): trylock on a free lock failed")
    #expect(!lock.tryLock(&b), "\(L.descriptor.name): trylock succeeded while held")
    lock.unlock(&a)
    #expect(lock.tryLock(&b), "\(L.descriptor.name): trylock after release failed")
    lock.unlock(&b)
    lock.lock(&a)
    #expect(!lock.tryLock(&b), "\(L.descriptor.name): trylock succeeded while held by lock()")
    lock.unlock(&a)
}

/// A "lock" that excludes nothing, for the test that the validator can fail.
struct NotALock: LockAlgorithm {
    typealias Context = NoContext
    static let descriptor = LockDescriptor(name: "not-a-lock", family: .harness, waiting: .never,
                                           paper: "test only", supportsTryLock: false)
    init(_ environment: LockEnvironment) {}
    func lock(_ context: inout NoContext) {}
    func unlock(_ context: inout NoContext) {}
    func deallocate() {}
}
