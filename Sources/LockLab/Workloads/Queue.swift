// queue: a FIFO linked list (head, tail, a node pool), enqueue/dequeue in pairs from an initially
// empty queue, as the Synch framework's queue benchmarks run it: each thread enqueues a value of
// its own, then dequeues one. So the queue never holds more than one element per thread; the pool
// has room for all of them. Model: an array with a front index.
// Whole-run invariants: the list from head reaches tail and holds `count` nodes, no value twice;
// with the log, every result matches the model (so every value comes out at most once, in FIFO
// order) and the rest is still in the queue, in order.

/// Header words: 0 head, 1 tail, 2 free list, 3 count.
@frozen
public struct LinkedQueue: SequentialStructure {
    public static let enqueue: UInt64 = 0
    public static let dequeue: UInt64 = 1
    @usableFromInline let block: NodeBlock

    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        let h = block.header
        if op.code == Self.enqueue {
            let n = h[2]
            if n == nilIndex { return emptyResult } // full
            let node = block.nodes + Int(n)
            h[2] = node.pointee.next
            node.pointee.key = op.arg0
            node.pointee.next = nilIndex
            if h[1] == nilIndex { h[0] = n } else { block.nodes[Int(h[1])].next = n }
            h[1] = n
            h[3] &+= 1
            return 1
        }
        let n = h[0]
        if n == nilIndex { return emptyResult }
        let node = block.nodes + Int(n)
        h[0] = node.pointee.next
        if h[0] == nilIndex { h[1] = nilIndex }
        node.pointee.next = h[2]
        h[2] = n
        h[3] &-= 1
        return node.pointee.key
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { false }
}

public struct QueueWorkload: Workload {
    public typealias ThreadState = DataThreadState
    public struct Model: SequentialModel {
        let capacity: Int
        var items: [UInt64] = []
        var front = 0
        public mutating func apply(_ op: Operation) -> UInt64 {
            if op.code == LinkedQueue.enqueue {
                if items.count - front >= capacity { return emptyResult }
                items.append(op.arg0)
                return 1
            }
            guard front < items.count else { return emptyResult }
            front += 1
            return items[front - 1]
        }
        public func contents() -> [UInt64] { Array(items[front...]) }
    }

    public static let name = "queue"
    public let structure: LinkedQueue
    public var record: UnsafeMutablePointer<HarnessRecord> { structure.block.record }
    @usableFromInline let outside: OutsideWork
    let memory: LabMemory

    public init(_ environment: WorkloadEnvironment, outside: OutsideWork) {
        memory = environment.memory
        let block = NodeBlock(memory: memory, capacity: environment.threads + 8, freeWord: 2)
        block.header[0] = nilIndex
        block.header[1] = nilIndex
        structure = LinkedQueue(block: block)
        self.outside = outside
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState { DataThreadState(thread: thread, seed: seed) }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation {
        state.second.toggle()
        if state.second {
            state.nextValue &+= 1
            return Operation(code: LinkedQueue.enqueue, arg0: state.nextValue)
        }
        return Operation(code: LinkedQueue.dequeue)
    }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { outside.run(&state.outsideRandom) }

    public func makeModel() -> Model { Model(capacity: structure.block.capacity) }

    public func invariantFailure(applied: UInt64) -> String? {
        let h = structure.block.header
        guard let nodes = structure.block.walk(from: h[0]) else { return "the list from head is cyclic or leaves the pool" }
        if UInt64(nodes.count) != h[3] { return "\(nodes.count) nodes reachable from head, count says \(h[3])" }
        if (nodes.last.map(UInt64.init) ?? nilIndex) != h[1] { return "tail is not the last node" }
        let values = nodes.map { structure.block.nodes[$0].key }
        if Set(values).count != values.count { return "a value is in the queue twice" }
        guard let free = structure.block.walk(from: h[2]), free.count + nodes.count == structure.block.capacity else {
            return "nodes lost: \(nodes.count) in the queue and the free list does not hold the rest"
        }
        return nil
    }

    public func contents() -> [UInt64] {
        (structure.block.walk(from: structure.block.header[0]) ?? []).map { structure.block.nodes[$0].key }
    }

    public func sharedMemory() -> [UnsafeRawBufferPointer] { [structure.block.memory] }

    public func deallocate() { structure.block.deallocate(memory) }
}
