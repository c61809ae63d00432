// The workloads (Sources/LockLab/Workloads/) and their models: each structure agrees with its
// sequential model operation by operation; the checks can fail (a structure that drops an element
// or returns a stale value is caught by the model replay); workload specs parse or fail with one
// line naming the flag.

import Testing
@testable import LockLab

/// Applies `count` generated operations from three interleaved thread streams, sequentially, to the
/// structure and to a model; returns the first disagreement, or the workload's verify failure.
struct SequentialAgreement: WorkloadBinder {
    let count: Int
    func run<W: Workload>(_ workload: W) throws -> String? {
        defer { workload.deallocate() }
        var states = (0..<3).map { workload.makeThreadState(for: ThreadSlot(index: $0, cpu: nil, node: 0), seed: 42) }
        var model = workload.makeModel()
        var log: [AppliedOperation] = []
        for i in 0..<count {
            let op = workload.nextOperation(&states[i % 3])
            workload.record.pointee.counter += 1
            let result = workload.structure.apply(op)
            let expected = model.apply(op)
            if result != expected { return "\(W.name): operation \(i) code \(op.code): \(result) vs model \(expected)" }
            workload.completed(op, result: result, &states[i % 3])
            log.append(AppliedOperation(operation: op, result: result))
        }
        if workload.contents() != model.contents() { return "\(W.name): contents differ from the model's" }
        return log.withUnsafeBufferPointer { workload.verify(applied: UInt64(count), log: $0).failure }
    }
}

/// A queue that silently drops every 50th enqueued value (reports success, stores nothing).
struct LossyQueue: Workload {
    struct Structure: SequentialStructure {
        let inner: LinkedQueue
        let enqueues: UnsafeMutablePointer<UInt64>
        func apply(_ op: Operation) -> UInt64 {
            if op.code == LinkedQueue.enqueue {
                enqueues.pointee += 1
                if enqueues.pointee % 50 == 0 { return 1 }
            }
            return inner.apply(op)
        }
        static func isReadOnly(_ op: Operation) -> Bool { false }
    }
    static let name = "lossy-queue"
    let base: QueueWorkload
    let structure: Structure
    var record: UnsafeMutablePointer<HarnessRecord> { base.record }
    init(threads: Int) {
        base = QueueWorkload(WorkloadEnvironment(threads: threads), outside: OutsideWork(nanoseconds: 0, random: false))
        structure = Structure(inner: base.structure, enqueues: .allocate(capacity: 1))
        structure.enqueues.initialize(to: 0)
    }
    func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> DataThreadState { base.makeThreadState(for: thread, seed: seed) }
    func nextOperation(_ state: inout DataThreadState) -> Operation { base.nextOperation(&state) }
    func outsideCriticalSection(_ state: inout DataThreadState) {}
    func makeModel() -> QueueWorkload.Model { base.makeModel() }
    func invariantFailure(applied: UInt64) -> String? { base.invariantFailure(applied: applied) }
    func contents() -> [UInt64] { base.contents() }
    func sharedMemory() -> [UnsafeRawBufferPointer] { base.sharedMemory() }
    func deallocate() {
        structure.enqueues.deallocate()
        base.deallocate()
    }
}

/// A counter that returns a stale value (one less than it should) every 100th operation.
struct StaleCounter: Workload {
    struct Structure: SequentialStructure {
        let inner: SharedCounter
        func apply(_ op: Operation) -> UInt64 {
            let old = inner.apply(op)
            return old % 100 == 99 ? old - 1 : old
        }
        static func isReadOnly(_ op: Operation) -> Bool { false }
    }
    static let name = "stale-counter"
    let base = CounterWorkload(WorkloadEnvironment(threads: 2), outside: OutsideWork(nanoseconds: 0, random: false))
    var structure: Structure { Structure(inner: base.structure) }
    var record: UnsafeMutablePointer<HarnessRecord> { base.record }
    func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> CounterWorkload.ThreadState { base.makeThreadState(for: thread, seed: seed) }
    func nextOperation(_ state: inout CounterWorkload.ThreadState) -> Operation { base.nextOperation(&state) }
    func outsideCriticalSection(_ state: inout CounterWorkload.ThreadState) {}
    func makeModel() -> CounterWorkload.Model { base.makeModel() }
    func invariantFailure(applied: UInt64) -> String? { base.invariantFailure(applied: applied) }
    func contents() -> [UInt64] { base.contents() }
    func sharedMemory() -> [UnsafeRawBufferPointer] { base.sharedMemory() }
    func deallocate() { base.deallocate() }
}

@Suite("Workloads", .serialized)
struct WorkloadTests {
    @Test("every structure agrees with its sequential model", arguments: WorkloadKind.allCases)
    func testStructureAgreesWithItsModel(kind: WorkloadKind) throws {
        let text = kind == .hashtable || kind == .list ? "\(kind.rawValue):keys=40:read-ratio=30" : kind.rawValue
        let spec = try WorkloadSpec(parsing: text)
        let failure = try spec.bind(SequentialAgreement(count: 20_000), environment: WorkloadEnvironment(threads: 3, seed: 9))
        #expect(failure == nil, "\(failure ?? "")")
    }

    func runTwoThreads<W: Workload>(_ workload: W) throws -> RawRunResult {
        let config = RunConfig(spec: try LockSpec(parsing: "mcs"),
                               threads: (0..<2).map { ThreadSlot(index: $0, cpu: nil, node: 0) },
                               length: .iterations(perThread: 2_000), sampleEvery: 0, logOperations: true)
        return try Harness.measure(MCSLock.self, workload: workload, config: config)
    }

    @Test func testModelCheckCatchesAQueueThatDropsElements() throws {
        let result = try runTwoThreads(LossyQueue(threads: 2))
        #expect(result.status == .mutexViolation)
        #expect(result.failure?.contains("sequential model") == true, "\(result.failure ?? "no failure")")
    }

    @Test func testModelCheckCatchesAStaleResult() throws {
        let result = try runTwoThreads(StaleCounter())
        #expect(result.status == .mutexViolation)
        #expect(result.failure?.contains("sequential model") == true, "\(result.failure ?? "no failure")")
    }

    @Test func testCounterHandsOutEveryValueOnce() throws {
        // Two threads, logged: the replay demands result i == i, so 0..n-1 with no gap or repeat.
        let result = try runTwoThreads(CounterWorkload(WorkloadEnvironment(threads: 2), outside: OutsideWork(nanoseconds: 0, random: false)))
        #expect(result.status == .ok, "\(result.failure ?? "")")
        #expect(result.counter == 4_000)
    }

    @Test func testWorkloadSpecs() throws {
        let h = try WorkloadSpec(parsing: "hashtable:read-ratio=90")
        #expect(h.kind == .hashtable && h.label == "hashtable:read-ratio=90")
        #expect(h.options.int("keys") == 1024 && h.options.int("read-ratio") == 90)
        #expect(h.options.csvText == "keys=1024;ncs-ns=0;ncs-random=0;read-ratio=90")
        let m = try WorkloadSpec(parsing: "micro", defaults: ["cs-lines": 4, "ncs-ns": 100, "keys": 7])
        #expect(m.label == "micro" && m.csLines == 4 && m.ncsNanoseconds == 100 && m.value("keys") == nil)
        #expect(m == .micro(MicrobenchmarkParameters(csLines: 4, ncsNanoseconds: 100)))
        #expect(try WorkloadSpec.parseList("all").map(\.kind) == WorkloadKind.allCases)
        for bad in ["", "btree", "list:keys", "list:keys=0", "hashtable:read-ratio=101", "queue:keys=4", "micro:cs-lines=-1"] {
            #expect(throws: LabError.self, "\(bad)") { try WorkloadSpec(parsing: bad) }
        }
    }

    @Test func testExperimentFileWorkloadEntry() throws {
        let text = """
            locks: [mcs]
            threads: [1]
            workload:
              name: [micro, "hashtable:read-ratio=90", counter]
              cs_lines: [1, 4]
              ncs_ns: [0, 100]
            """
        let experiment = try Experiment.parse(text, file: "w.yaml")
        // micro: 2 cs_lines x 2 ncs_ns; hashtable and counter: 2 ncs_ns each.
        #expect(experiment.workloads.count == 8)
        #expect(experiment.workloads.filter { $0.kind == .hashtable }.allSatisfy { $0.options.int("read-ratio") == 90 })
        #expect(throws: ExperimentFileError.self) {
            try Experiment.parse("locks: [mcs]\nthreads: [1]\nworkload:\n  name: btree\n", file: "w.yaml")
        }
    }
}
