// stack: a LIFO linked list (top, a node pool), push/pop in pairs from an initially empty stack, as
// the Synch framework's stack benchmarks run it: each thread pushes a value of its own, then pops
// one. Model: an array. Whole-run invariants: the list from top holds `count` nodes, no value
// twice, the free list holds the rest; with the log, every result matches the model (every value
// pops at most once, LIFO) and the rest is still on the stack, in order.

/// Header words: 0 top, 1 count, 2 free list.
@frozen
public struct LinkedStack: SequentialStructure {
    public static let push: UInt64 = 0
    public static let pop: UInt64 = 1
    @usableFromInline let block: NodeBlock

    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        let h = block.header
        if op.code == Self.push {
            let n = h[2]
            if n == nilIndex { return emptyResult } // full
            let node = block.nodes + Int(n)
            h[2] = node.pointee.next
            node.pointee.key = op.arg0
            node.pointee.next = h[0]
            h[0] = n
            h[1] &+= 1
            return 1
        }
        let n = h[0]
        if n == nilIndex { return emptyResult }
        let node = block.nodes + Int(n)
        h[0] = node.pointee.next
        node.pointee.next = h[2]
        h[2] = n
        h[1] &-= 1
        return node.pointee.key
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { false }
}

public struct StackWorkload: Workload {
    public typealias ThreadState = DataThreadState
    public struct Model: SequentialModel {
        let capacity: Int
        var items: [UInt64] = []
        public mutating func apply(_ op: Operation) -> UInt64 {
            if op.code == LinkedStack.push {
                if items.count >= capacity { return emptyResult }
                items.append(op.arg0)
                return 1
            }
            return items.popLast() ?? emptyResult
        }
        public func contents() -> [UInt64] { items }
    }

    public static let name = "stack"
    public let structure: LinkedStack
    public var record: UnsafeMutablePointer<HarnessRecord> { structure.block.record }
    @usableFromInline let outside: OutsideWork
    let memory: LabMemory

    public init(_ environment: WorkloadEnvironment, outside: OutsideWork) {
        memory = environment.memory
        let block = NodeBlock(memory: memory, capacity: environment.threads + 8, freeWord: 2)
        block.header[0] = nilIndex
        structure = LinkedStack(block: block)
        self.outside = outside
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState { DataThreadState(thread: thread, seed: seed) }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation {
        state.second.toggle()
        if state.second {
            state.nextValue &+= 1
            return Operation(code: LinkedStack.push, arg0: state.nextValue)
        }
        return Operation(code: LinkedStack.pop)
    }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { outside.run(&state.outsideRandom) }

    public func makeModel() -> Model { Model(capacity: structure.block.capacity) }

    public func invariantFailure(applied: UInt64) -> String? {
        let h = structure.block.header
        guard let nodes = structure.block.walk(from: h[0]) else { return "the list from top is cyclic or leaves the pool" }
        if UInt64(nodes.count) != h[1] { return "\(nodes.count) nodes reachable from top, count says \(h[1])" }
        let values = nodes.map { structure.block.nodes[$0].key }
        if Set(values).count != values.count { return "a value is on the stack twice" }
        guard let free = structure.block.walk(from: h[2]), free.count + nodes.count == structure.block.capacity else {
            return "nodes lost: \(nodes.count) on the stack and the free list does not hold the rest"
        }
        return nil
    }

    /// Bottom to top, as the model's array.
    public func contents() -> [UInt64] {
        (structure.block.walk(from: structure.block.header[0]) ?? []).map { structure.block.nodes[$0].key }.reversed()
    }

    public func sharedMemory() -> [UnsafeRawBufferPointer] { [structure.block.memory] }

    public func deallocate() { structure.block.deallocate(memory) }
}
