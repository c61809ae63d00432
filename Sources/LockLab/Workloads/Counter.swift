// counter: a shared counter, fetch-and-add returning the old value. The smallest critical section
// a data structure has: one word, in the harness record's line. Model: a plain integer.
// Whole-run invariants: the counter equals the operations applied; with the log, the results are
// exactly 0..n-1 in application order (no gap, no repeat).

/// The counter word, after the harness record in the first line.
@frozen
public struct SharedCounter: SequentialStructure {
    @usableFromInline let value: UnsafeMutablePointer<UInt64>

    /// fetch-and-add(arg0): the old value.
    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        let old = value.pointee
        value.pointee = old &+ op.arg0
        return old
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { false }
}

public struct CounterWorkload: Workload {
    public struct ThreadState { @usableFromInline var random: UInt64 }
    public struct Model: SequentialModel {
        var value: UInt64 = 0
        public mutating func apply(_ op: Operation) -> UInt64 {
            defer { value &+= op.arg0 }
            return value
        }
        public func contents() -> [UInt64] { [value] }
    }

    public static let name = "counter"
    public let structure: SharedCounter
    public let record: UnsafeMutablePointer<HarnessRecord>
    @usableFromInline let outside: OutsideWork
    let memory: LabMemory

    public init(_ environment: WorkloadEnvironment, outside: OutsideWork) {
        memory = environment.memory
        let raw = memory.allocate(bytes: 64)
        record = raw.bindMemory(to: HarnessRecord.self, capacity: 1)
        structure = SharedCounter(value: (raw + HarnessRecord.bytes).bindMemory(to: UInt64.self, capacity: 1))
        self.outside = outside
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState {
        ThreadState(random: SplitMix64.seed(seed, thread: thread.index))
    }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation { Operation(code: 0, arg0: 1) }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { outside.run(&state.random) }

    public func makeModel() -> Model { Model() }

    public func invariantFailure(applied: UInt64) -> String? {
        structure.value.pointee == applied ? nil : "the counter is \(structure.value.pointee) after \(applied) increments"
    }

    public func contents() -> [UInt64] { [structure.value.pointee] }

    public func sharedMemory() -> [UnsafeRawBufferPointer] { [UnsafeRawBufferPointer(start: record, count: 64)] }

    public func deallocate() { memory.deallocate(UnsafeMutableRawPointer(record), bytes: 64) }
}
