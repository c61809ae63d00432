// list: a sorted singly linked list over a fixed key range (`keys`), insert/delete/contains with
// `read-ratio` percent contains and the rest split evenly between insert and delete. Each operation
// walks the list from the head: the long, read-mostly critical section of the lock literature's
// list benchmarks. Nodes from a pool of `keys`. Model: a Swift Set.
// Whole-run invariants: keys strictly ascending, `count` nodes, the free list holds the rest; with
// the log, every result matches the model and the contents equal the model's.

/// Header words: 0 head, 1 count, 2 free list.
@frozen
public struct SortedLinkedList: SequentialStructure {
    public static let contains: UInt64 = 0
    public static let insert: UInt64 = 1
    public static let delete: UInt64 = 2
    @usableFromInline let block: NodeBlock

    /// contains(key), insert(key), delete(key): 1 if the key was present (contains, delete) or
    /// absent and inserted (insert), else 0.
    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        let h = block.header
        var previous = nilIndex
        var i = h[0]
        while i != nilIndex, block.nodes[Int(i)].key < op.arg0 {
            previous = i
            i = block.nodes[Int(i)].next
        }
        let found = i != nilIndex && block.nodes[Int(i)].key == op.arg0
        switch op.code {
        case Self.contains:
            return found ? 1 : 0
        case Self.insert:
            if found { return 0 }
            let n = h[2]
            if n == nilIndex { return 0 } // cannot happen: keys <= nodes
            h[2] = block.nodes[Int(n)].next
            block.nodes[Int(n)] = PoolNode(key: op.arg0, value: 0, next: i)
            if previous == nilIndex { h[0] = n } else { block.nodes[Int(previous)].next = n }
            h[1] &+= 1
            return 1
        default:
            if !found { return 0 }
            let next = block.nodes[Int(i)].next
            if previous == nilIndex { h[0] = next } else { block.nodes[Int(previous)].next = next }
            block.nodes[Int(i)].next = h[2]
            h[2] = i
            h[1] &-= 1
            return 1
        }
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { op.code == contains }
}

public struct ListWorkload: Workload {
    public typealias ThreadState = DataThreadState
    public struct Model: SequentialModel {
        var keys = Set<UInt64>()
        public mutating func apply(_ op: Operation) -> UInt64 {
            switch op.code {
            case SortedLinkedList.contains: return keys.contains(op.arg0) ? 1 : 0
            case SortedLinkedList.insert: return keys.insert(op.arg0).inserted ? 1 : 0
            default: return keys.remove(op.arg0) != nil ? 1 : 0
            }
        }
        public func contents() -> [UInt64] { keys.sorted() }
    }

    public static let name = "list"
    public let structure: SortedLinkedList
    public var record: UnsafeMutablePointer<HarnessRecord> { structure.block.record }
    @usableFromInline let outside: OutsideWork
    @usableFromInline let keys: UInt64
    @usableFromInline let readPercent: UInt64
    let memory: LabMemory

    public init(_ environment: WorkloadEnvironment, keys: Int, readPercent: Int, outside: OutsideWork) {
        memory = environment.memory
        let block = NodeBlock(memory: memory, capacity: keys, freeWord: 2)
        block.header[0] = nilIndex
        structure = SortedLinkedList(block: block)
        self.keys = UInt64(keys)
        self.readPercent = UInt64(readPercent)
        self.outside = outside
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState { DataThreadState(thread: thread, seed: seed) }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation {
        Self.operation(&state, keys: keys, readPercent: readPercent)
    }

    /// The operation stream, shared with the RCU twin (RCUSortedList.swift): a key below `keys`,
    /// a contains with `readPercent` percent chance, else an insert or a delete, evenly.
    @inline(__always)
    static func operation(_ state: inout DataThreadState, keys: UInt64, readPercent: UInt64) -> Operation {
        let key = state.key(below: keys)
        if state.chance(percent: readPercent) { return Operation(code: SortedLinkedList.contains, arg0: key) }
        return Operation(code: state.random.next() & 1 == 0 ? SortedLinkedList.insert : SortedLinkedList.delete, arg0: key)
    }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { outside.run(&state.outsideRandom) }

    public func makeModel() -> Model { Model() }

    public func invariantFailure(applied: UInt64) -> String? {
        let block = structure.block
        guard let nodes = block.walk(from: block.header[0]) else { return "the list is cyclic or leaves the pool" }
        let keys = nodes.map { block.nodes[$0].key }
        for k in 1..<max(1, keys.count) where keys[k - 1] >= keys[k] { return "keys not ascending at position \(k)" }
        if UInt64(nodes.count) != block.header[1] { return "\(nodes.count) nodes in the list, count says \(block.header[1])" }
        guard let free = block.walk(from: block.header[2]), free.count + nodes.count == block.capacity else {
            return "nodes lost: \(nodes.count) in the list and the free list does not hold the rest"
        }
        return nil
    }

    public func contents() -> [UInt64] {
        (structure.block.walk(from: structure.block.header[0]) ?? []).map { structure.block.nodes[$0].key }
    }

    public func sharedMemory() -> [UnsafeRawBufferPointer] { [structure.block.memory] }

    public func deallocate() { structure.block.deallocate(memory) }
}
