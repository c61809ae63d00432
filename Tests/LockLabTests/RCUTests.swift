// RCU (RCU/, Workloads/RCUSnapshot.swift): every flavour with every writer lock passes the harness's
// checks on snapshot's twin (the model replay of the updates, every read inside its version window,
// no torn or poisoned read, the pool's accounting), and the checks are shown to bite: a flavour
// whose grace period ends at once, and a reader that leaves its read-side section before it is
// done with the node, are caught at 2 threads.

import CShims
import Testing
@testable import LockLab

private func slots(_ n: Int) -> [ThreadSlot] { (0..<n).map { ThreadSlot(index: $0, cpu: nil, node: 0) } }

private func logged(_ lock: String, threads: Int, perThread: Int) throws -> RunConfig {
    RunConfig(spec: try LockSpec(parsing: lock), threads: slots(threads), nodeCount: 1, length: .iterations(perThread: perThread),
              sampleEvery: 4, logOperations: true)
}

/// A broken flavour: its grace period ends at once (frees under readers).
struct EarlyFreeRCU<Inner: RCUFlavor>: RCUFlavor {
    typealias Reader = Inner.Reader
    static var name: String { "early-free-" + Inner.name }
    static var paper: String { "test: no grace period" }
    static var options: [LockOptionSpec] { Inner.options }
    let inner: Inner
    init(threads: Int, memory: LabMemory, options: LockOptions) throws { inner = try Inner(threads: threads, memory: memory, options: options) }
    func register(thread: Int) -> Reader { inner.register(thread: thread) }
    func unregister(_ reader: inout Reader) { inner.unregister(&reader) }
    func readLock(_ reader: inout Reader) { inner.readLock(&reader) }
    func readUnlock(_ reader: inout Reader) { inner.readUnlock(&reader) }
    func quiescentState(_ reader: inout Reader) { inner.quiescentState(&reader) }
    func synchronize(_ reader: inout Reader) {}
    func deallocate() { inner.deallocate() }
}

/// A broken reader: it leaves its read-side section as soon as it enters, before it reads the node.
struct LeavesEarlyRCU<Inner: RCUFlavor>: RCUFlavor {
    typealias Reader = Inner.Reader
    static var name: String { "leaves-early-" + Inner.name }
    static var paper: String { "test: reader outside its section" }
    static var options: [LockOptionSpec] { Inner.options }
    let inner: Inner
    init(threads: Int, memory: LabMemory, options: LockOptions) throws { inner = try Inner(threads: threads, memory: memory, options: options) }
    func register(thread: Int) -> Reader { inner.register(thread: thread) }
    func unregister(_ reader: inout Reader) { inner.unregister(&reader) }
    func readLock(_ reader: inout Reader) {
        inner.readLock(&reader)
        inner.readUnlock(&reader)
    }
    func readUnlock(_ reader: inout Reader) {}
    func synchronize(_ reader: inout Reader) { inner.synchronize(&reader) }
    func deallocate() { inner.deallocate() }
}

/// Runs flavour `F` (writer MCS) on snapshot's twin, unlogged, for `perThread` operations a thread.
private func measure<F: RCUFlavor>(_ flavor: F.Type, threads: Int, perThread: Int, workload: String) throws -> RawRunResult {
    var values: [String: Int] = ["writer": 0, "batch": 1]
    for o in F.options { values[o.key] = o.defaultValue }
    let options = LockOptions(values)
    let spec = try WorkloadSpec(parsing: workload)
    let w = try RCUSnapshotWorkload<F>(WorkloadEnvironment(threads: threads, seed: 5), lines: spec.options.int("lines"),
                                       readPercent: spec.options.int("read-ratio"), outside: OutsideWork(nanoseconds: 0, random: false),
                                       options: options)
    let config = RunConfig(spec: try LockSpec(parsing: "rcu-ebr"), threads: slots(threads), nodeCount: 1,
                           length: .iterations(perThread: perThread), sampleEvery: 0)
    return try Harness.measure(executor: RCUExecutor<F, MCSLock>.self, workload: w, config: config) { env in
        try RCUExecutor<F, MCSLock>(env, domain: w.domain)
    }
}

@Suite("RCU", .serialized)
struct RCUTests {
    static let flavours = LockRegistry.all.filter(\.isRCU).map(\.descriptor.name)

    @Test("the lab's flavours and liburcu's are registered, family rcu, reads optimistic")
    func testRegistered() {
        #expect(Self.flavours == ["rcu-qsbr", "rcu-ebr", "rcu-memb", "urcu-memb", "urcu-qsbr", "urcu-mb", "urcu-bp"])
        #expect(LockRegistry.all.filter(\.isRCU).allSatisfy { $0.readSharing == .optimistic })
    }

    @Test("every flavour with every writer lock passes the update, read and pool checks (2 and 4 threads)",
          arguments: flavours, RCUWriters.choices)
    func testFlavourPassesTheChecks(flavour: String, writer: String) throws {
        try ThreadSanitizer.skipIfBlind(flavour)
        for (threads, batch) in [(2, 1), (2, 4096), (4, 3)] {
            let lock = "\(flavour):writer=\(writer):batch=\(batch)"
            let perThread = ThreadSanitizer.scaled(threads > Int(cshims_online_cpus()) ? 2_000 : 20_000)
            let result = try LockSpec(parsing: lock).entry.run(try logged(lock, threads: threads, perThread: perThread),
                                                               try WorkloadSpec(parsing: "snapshot:lines=4:read-ratio=80"))
            #expect(result.status == .ok, "\(lock) at \(threads) threads: \(result.failure ?? "")")
            let reads = result.threads.reduce(UInt64(0)) { $0 + $1.totalReads }
            #expect(reads > 0)
            #expect(result.counter == UInt64(threads * perThread) - reads)
            let reclamation = try #require(result.reclamation)
            // batch=1: a grace period after every update (the measured phase is the whole run).
            if batch == 1 { #expect(reclamation.gracePeriods == result.counter, "\(lock)") }
            #expect(reclamation.awaitingHighWater >= 1 && reclamation.awaitingHighWater <= UInt64(threads * (batch + 1)))
        }
    }

    @Test("an RCU flavour is refused, in one line, on a workload without an RCU twin")
    func testRefusedWithoutTwin() throws {
        let spec = try LockSpec(parsing: "rcu-qsbr")
        for text in ["queue", "counter", "micro", "pqueue"] {
            let workload = try WorkloadSpec(parsing: text)
            let refusal = try #require(workload.pairingRefusal(spec))
            #expect(refusal.contains("no RCU twin") && !refusal.contains("\n"))
            #expect(throws: LabError.self) { try spec.entry.run(try logged("rcu-qsbr", threads: 1, perThread: 10), workload) }
        }
        for text in ["snapshot", "hashtable:read-ratio=90", "list:read-ratio=50"] {
            #expect(try WorkloadSpec(parsing: text).pairingRefusal(spec) == nil)
        }
    }

    @Test("a pool too large for memory is refused in one line")
    func testPoolBound() throws {
        #expect(throws: LabError.self) {
            _ = try RCUSnapshotWorkload<QSBR>(WorkloadEnvironment(threads: 64), lines: 65_536, readPercent: 90,
                                              outside: OutsideWork(nanoseconds: 0, random: false),
                                              options: LockOptions(["writer": 0, "batch": 65_536]))
        }
    }

    @Test("the checks bite: a grace period that ends at once is caught (2 threads)")
    func testEarlyFreeCaught() throws {
        for _ in 0..<5 {
            let result = try measure(EarlyFreeRCU<EBR>.self, threads: 2, perThread: 200_000, workload: "snapshot:lines=16:read-ratio=50")
            if result.status == .mutexViolation {
                #expect(result.failure?.contains("torn or poisoned") == true)
                return
            }
        }
        Issue.record("five runs of a flavour that frees under its readers passed")
    }

    @Test("the checks bite: a reader that leaves its section before reading is caught (2 threads)",
          arguments: ["ebr", "memb"])
    func testReaderLeavingEarlyCaught(flavour: String) throws {
        for _ in 0..<5 {
            let result = flavour == "ebr"
                ? try measure(LeavesEarlyRCU<EBR>.self, threads: 2, perThread: 200_000, workload: "snapshot:lines=16:read-ratio=50")
                : try measure(LeavesEarlyRCU<MembRCU>.self, threads: 2, perThread: 200_000, workload: "snapshot:lines=16:read-ratio=50")
            if result.status == .mutexViolation { return }
        }
        Issue.record("five runs of a reader outside its read-side section passed")
    }

    @Test("the correct flavour passes what the broken ones fail (same load)")
    func testCorrectPassesSameLoad() throws {
        let result = try measure(EBR.self, threads: 2, perThread: 100_000, workload: "snapshot:lines=16:read-ratio=50")
        #expect(result.status == .ok, "\(result.failure ?? "")")
    }
}
