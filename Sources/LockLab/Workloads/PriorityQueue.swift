// pqueue: a binary min-heap in an array, insert/delete-min in pairs (each thread inserts a key,
// then deletes the minimum), prefilled with `prefill` keys drawn from the run's seed so that
// delete-min walks a real heap. Keys uniform in 0..<`keys`. Capacity: the prefill plus one
// element per thread. Model: a sorted array.
// Whole-run invariants: the heap property at every node, the capacity as made, the size between the
// prefill and the prefill plus the threads (no operation of the pairs can fail); with the log,
// every result matches the model and the contents (sorted) equal the model's.

/// Header words: 0 size, 1 capacity. The heap array follows the header line.
@frozen
public struct BinaryHeap: SequentialStructure {
    public static let insert: UInt64 = 0
    public static let deleteMin: UInt64 = 1
    @usableFromInline let header: UnsafeMutablePointer<UInt64>
    @usableFromInline let heap: UnsafeMutablePointer<UInt64>

    /// insert(key): 1, or empty when full; deleteMin: the smallest key, or empty.
    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        var size = Int(header[0])
        if op.code == Self.insert {
            if size >= Int(header[1]) { return emptyResult }
            var i = size
            size += 1
            while i > 0 {
                let parent = (i - 1) / 2
                if heap[parent] <= op.arg0 { break }
                heap[i] = heap[parent]
                i = parent
            }
            heap[i] = op.arg0
            header[0] = UInt64(size)
            return 1
        }
        if size == 0 { return emptyResult }
        let minimum = heap[0]
        size -= 1
        let last = heap[size]
        var i = 0
        while true {
            var child = 2 * i + 1
            if child >= size { break }
            if child + 1 < size, heap[child + 1] < heap[child] { child += 1 }
            if last <= heap[child] { break }
            heap[i] = heap[child]
            i = child
        }
        heap[i] = last
        header[0] = UInt64(size)
        return minimum
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { false }
}

public struct PriorityQueueWorkload: Workload {
    public typealias ThreadState = DataThreadState
    public struct Model: SequentialModel {
        let capacity: Int
        var sorted: [UInt64]
        public mutating func apply(_ op: Operation) -> UInt64 {
            if op.code == BinaryHeap.insert {
                if sorted.count >= capacity { return emptyResult }
                var low = 0, high = sorted.count
                while low < high {
                    let mid = (low + high) / 2
                    if sorted[mid] < op.arg0 { low = mid + 1 } else { high = mid }
                }
                sorted.insert(op.arg0, at: low)
                return 1
            }
            return sorted.isEmpty ? emptyResult : sorted.removeFirst()
        }
        public func contents() -> [UInt64] { sorted }
    }

    public static let name = "pqueue"
    public let structure: BinaryHeap
    public var record: UnsafeMutablePointer<HarnessRecord> { raw.bindMemory(to: HarnessRecord.self, capacity: 1) }
    @usableFromInline let outside: OutsideWork
    @usableFromInline let keys: UInt64
    let initial: [UInt64]
    /// The heap's capacity as made (it never changes) and the threads of the run.
    let capacity: Int
    let threads: Int
    let memory: LabMemory
    let raw: UnsafeMutableRawPointer
    let bytes: Int

    public init(_ environment: WorkloadEnvironment, keys: Int, prefill: Int, outside: OutsideWork) {
        memory = environment.memory
        let capacity = prefill + environment.threads + 8
        self.capacity = capacity
        threads = environment.threads
        bytes = 64 + capacity * 8
        raw = memory.allocate(bytes: bytes)
        let header = (raw + HarnessRecord.bytes).bindMemory(to: UInt64.self, capacity: 4)
        header[1] = UInt64(capacity)
        structure = BinaryHeap(header: header, heap: (raw + 64).bindMemory(to: UInt64.self, capacity: capacity))
        self.keys = UInt64(keys)
        self.outside = outside
        var random = SplitMix64(seed: environment.seed ^ 0x7071_7565_7565) // "pqueue"
        initial = (0..<prefill).map { _ in random.next().multipliedFullWidth(by: UInt64(keys)).high }
        for key in initial { _ = structure.apply(Operation(code: BinaryHeap.insert, arg0: key)) }
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState { DataThreadState(thread: thread, seed: seed) }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation {
        state.second.toggle()
        if state.second { return Operation(code: BinaryHeap.insert, arg0: state.key(below: keys)) }
        return Operation(code: BinaryHeap.deleteMin)
    }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { outside.run(&state.outsideRandom) }

    public func makeModel() -> Model { Model(capacity: Int(structure.header[1]), sorted: initial.sorted()) }

    public func invariantFailure(applied: UInt64) -> String? {
        let size = Int(structure.header[0])
        if structure.header[1] != UInt64(capacity) { return "capacity \(structure.header[1]), made \(capacity): the heap lost or gained slots" }
        if size > Int(structure.header[1]) { return "size \(size) above capacity \(structure.header[1])" }
        // Each thread alternates insert and delete-min, so in a correct heap neither ever fails
        // (capacity >= prefill + threads; a thread's delete follows its own insert) and at the end
        // every thread has left 0 or 1 key of its own beside the prefill. A heap whose operations
        // fail where they cannot (an insert into a heap that is not full) ends outside this range,
        // which an unlogged `run` sees too.
        if size < initial.count || size > initial.count + threads {
            return "size \(size) outside [prefill \(initial.count), prefill + threads \(initial.count + threads)]: an insert or delete-min failed that cannot"
        }
        for i in 1..<max(1, size) where structure.heap[(i - 1) / 2] > structure.heap[i] {
            return "heap property broken at \(i)"
        }
        return nil
    }

    public func contents() -> [UInt64] { (0..<Int(structure.header[0])).map { structure.heap[$0] }.sorted() }

    public func sharedMemory() -> [UnsafeRawBufferPointer] { [UnsafeRawBufferPointer(start: raw, count: bytes)] }

    public func deallocate() { memory.deallocate(raw, bytes: bytes) }
}
