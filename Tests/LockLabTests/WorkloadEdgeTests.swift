// Issue 27.5: every workload at its edge sizes (WorkloadSpec.edgeCases) agrees with its model,
// sequentially and under a lock with the log replayed; and a deliberately broken variant of each
// structure is caught at one thread, the heap's only at its edge (a heap that never empties hides
// its bug: the prefill of 1024 did).

import Testing
@testable import LockLab

/// A bug planted in structure `Inner`: how the broken structure applies an operation.
protocol PlantedBug {
    associatedtype Inner: SequentialStructure
    static func apply(_ op: Operation, on inner: Inner, calls: UnsafeMutablePointer<UInt64>) -> UInt64
}

/// `Base` with its structure's `apply` replaced by `Bug`'s; everything else (operations, model,
/// invariants) is the base workload's.
struct Planted<Base: Workload, Bug: PlantedBug>: Workload where Bug.Inner == Base.Structure {
    struct Structure: SequentialStructure {
        let inner: Base.Structure
        let calls: UnsafeMutablePointer<UInt64>
        func apply(_ op: Operation) -> UInt64 { Bug.apply(op, on: inner, calls: calls) }
        static func isReadOnly(_ op: Operation) -> Bool { Base.Structure.isReadOnly(op) }
    }
    static var name: String { "planted-" + Base.name }
    let base: Base
    let structure: Structure
    var record: UnsafeMutablePointer<HarnessRecord> { base.record }
    init(_ base: Base) {
        self.base = base
        let calls = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        calls.initialize(to: 0)
        structure = Structure(inner: base.structure, calls: calls)
    }
    func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> Base.ThreadState { base.makeThreadState(for: thread, seed: seed) }
    func nextOperation(_ state: inout Base.ThreadState) -> Operation { base.nextOperation(&state) }
    func completed(_ op: Operation, result: UInt64, _ state: inout Base.ThreadState) { base.completed(op, result: result, &state) }
    func outsideCriticalSection(_ state: inout Base.ThreadState) {}
    func makeModel() -> Base.Model { base.makeModel() }
    func invariantFailure(applied: UInt64) -> String? { base.invariantFailure(applied: applied) }
    func contents() -> [UInt64] { base.contents() }
    func sharedMemory() -> [UnsafeRawBufferPointer] { base.sharedMemory() }
    func deallocate() {
        structure.calls.deallocate()
        base.deallocate()
    }
}

/// A heap whose delete-min, when it empties the heap, also loses the heap's last slot (capacity - 1).
enum HeapLosesItsLastSlot: PlantedBug {
    static func apply(_ op: Operation, on heap: BinaryHeap, calls: UnsafeMutablePointer<UInt64>) -> UInt64 {
        let r = heap.apply(op)
        if op.code == BinaryHeap.deleteMin, r != emptyResult, heap.header[0] == 0, heap.header[1] > 0 { heap.header[1] -= 1 }
        return r
    }
}

/// A table whose delete of a bucket's first entry unlinks its successor too.
enum TableHeadDeleteUnlinksSuccessor: PlantedBug {
    static func apply(_ op: Operation, on table: ChainedHashTable, calls: UnsafeMutablePointer<UInt64>) -> UInt64 {
        guard op.code == ChainedHashTable.delete else { return table.apply(op) }
        let head = table.buckets[Int(op.arg0 & table.block.header[2])]
        var successorKey: UInt64? = nil
        if head != nilIndex, table.block.nodes[Int(head)].key == op.arg0 {
            let next = table.block.nodes[Int(head)].next
            if next != nilIndex { successorKey = table.block.nodes[Int(next)].key }
        }
        let r = table.apply(op)
        if let successorKey { _ = table.apply(Operation(code: ChainedHashTable.delete, arg0: successorKey, arg1: 0)) }
        return r
    }
}

/// A list whose insert of a key already present reports an insertion.
enum ListInsertReportsTheWrongResult: PlantedBug {
    static func apply(_ op: Operation, on list: SortedLinkedList, calls: UnsafeMutablePointer<UInt64>) -> UInt64 {
        let r = list.apply(op)
        return op.code == SortedLinkedList.insert && r == 0 ? 1 : r
    }
}

/// A stack that loses every seventh push (reports it done, stores nothing).
enum StackLosesItsTop: PlantedBug {
    static func apply(_ op: Operation, on stack: LinkedStack, calls: UnsafeMutablePointer<UInt64>) -> UInt64 {
        if op.code == LinkedStack.push {
            calls.pointee += 1
            if calls.pointee % 7 == 0 { return 1 }
        }
        return stack.apply(op)
    }
}

private func oneThread<W: Workload>(_ workload: W) throws -> RawRunResult {
    let config = RunConfig(spec: try LockSpec(parsing: "mcs"), threads: [ThreadSlot(index: 0, cpu: nil, node: 0)],
                           length: .iterations(perThread: 4_000), sampleEvery: 0, logOperations: true)
    return try Harness.measure(MCSLock.self, workload: workload, config: config)
}

private let outside = OutsideWork(nanoseconds: 0, random: false)

@Suite("Workloads at their edges", .serialized)
struct WorkloadEdgeTests {
    static let edges = WorkloadKind.allCases.flatMap { WorkloadSpec.edgeCases($0) }.map(\.label)

    @Test("every edge case agrees with its sequential model", arguments: edges)
    func testEdgeAgreesWithModel(text: String) throws {
        let failure = try WorkloadSpec(parsing: text).bind(SequentialAgreement(count: 20_000), environment: WorkloadEnvironment(threads: 3, seed: 5))
        #expect(failure == nil, "\(failure ?? "")")
    }

    @Test("every edge case passes the validator at 1, 2 and 4 threads", arguments: edges)
    func testEdgeValidates(text: String) throws {
        for threads in [1, 2, 4] {
            let o = try Validator.validate(try LockSpec(parsing: "mcs"), workload: try WorkloadSpec(parsing: text),
                                           threads: threads, nodes: 1, seconds: 0.05, seed: 3)
            #expect(o.verdict == .passed, "\(text) at \(threads): \(o.verdict)")
        }
    }

    @Test("a heap that loses its last slot when it empties: hidden by the prefill, caught at its edge, 1 thread")
    func testBrokenHeap() throws {
        let hidden = try oneThread(Planted<PriorityQueueWorkload, HeapLosesItsLastSlot>(
            PriorityQueueWorkload(WorkloadEnvironment(threads: 1), keys: 1 << 20, prefill: 1024, outside: outside)))
        #expect(hidden.status == .ok, "the prefilled heap never empties: \(hidden.failure ?? "")")
        let caught = try oneThread(Planted<PriorityQueueWorkload, HeapLosesItsLastSlot>(
            PriorityQueueWorkload(WorkloadEnvironment(threads: 1), keys: 1 << 20, prefill: 0, outside: outside)))
        #expect(caught.status == .mutexViolation && caught.failure != nil)
    }

    @Test("the broken heap is caught without the log too (a measured run: invariants only)")
    func testBrokenHeapUnlogged() throws {
        let config = RunConfig(spec: try LockSpec(parsing: "mcs"), threads: [ThreadSlot(index: 0, cpu: nil, node: 0)],
                               length: .timed(warmupSeconds: 0.01, measureSeconds: 0.05), sampleEvery: 0)
        let result = try Harness.measure(MCSLock.self, workload: Planted<PriorityQueueWorkload, HeapLosesItsLastSlot>(
            PriorityQueueWorkload(WorkloadEnvironment(threads: 1), keys: 1 << 20, prefill: 0, outside: outside)), config: config)
        #expect(result.status == .mutexViolation)
        #expect(result.failure?.contains("capacity") == true, "\(result.failure ?? "no failure")")
    }

    @Test("a table whose head delete unlinks the successor is caught at 1 thread (two keys, one chain)")
    func testBrokenTable() throws {
        let caught = try oneThread(Planted<HashTableWorkload, TableHeadDeleteUnlinksSuccessor>(
            HashTableWorkload(WorkloadEnvironment(threads: 1), keys: 2, readPercent: 0, outside: outside)))
        #expect(caught.status == .mutexViolation && caught.failure != nil)
    }

    @Test("a list whose insert reports the wrong result is caught at 1 thread")
    func testBrokenList() throws {
        let caught = try oneThread(Planted<ListWorkload, ListInsertReportsTheWrongResult>(
            ListWorkload(WorkloadEnvironment(threads: 1), keys: 1, readPercent: 20, outside: outside)))
        #expect(caught.status == .mutexViolation && caught.failure != nil)
    }

    @Test("a stack that loses its top is caught at 1 thread")
    func testBrokenStack() throws {
        let caught = try oneThread(Planted<StackWorkload, StackLosesItsTop>(StackWorkload(WorkloadEnvironment(threads: 1), outside: outside)))
        #expect(caught.status == .mutexViolation && caught.failure != nil)
    }
}
