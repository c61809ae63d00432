// hashtable: a chained hash table over a fixed key range (`keys`), get/put/delete with `read-ratio`
// percent gets and the rest split evenly between put and delete. Buckets are a power of two about
// keys/4 (chains of about four when full); nodes come from a pool of `keys` nodes, enough for every
// key at once. Model: a Swift Dictionary.
// Whole-run invariants: every node sits in its key's bucket, no key twice, `count` nodes in the
// buckets and the free list holds the rest; with the log, every result matches the model and the
// contents (key, value pairs) equal the model's.

/// Header words: 0 count, 1 free list, 2 bucket mask. Buckets (node indices) follow the nodes.
@frozen
public struct ChainedHashTable: SequentialStructure {
    public static let get: UInt64 = 0
    public static let put: UInt64 = 1
    public static let delete: UInt64 = 2
    @usableFromInline let block: NodeBlock
    @usableFromInline let buckets: UnsafeMutablePointer<UInt64>

    /// get(key): the value or empty; put(key, value): the old value or empty; delete(key): the
    /// old value or empty.
    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        let h = block.header
        let bucket = buckets + Int(op.arg0 & h[2])
        var previous = nilIndex
        var i = bucket.pointee
        while i != nilIndex, block.nodes[Int(i)].key != op.arg0 {
            previous = i
            i = block.nodes[Int(i)].next
        }
        switch op.code {
        case Self.get:
            return i == nilIndex ? emptyResult : block.nodes[Int(i)].value
        case Self.put:
            if i != nilIndex {
                let old = block.nodes[Int(i)].value
                block.nodes[Int(i)].value = op.arg1
                return old
            }
            let n = h[1]
            if n == nilIndex { return emptyResult } // cannot happen: keys <= nodes
            h[1] = block.nodes[Int(n)].next
            block.nodes[Int(n)] = PoolNode(key: op.arg0, value: op.arg1, next: bucket.pointee)
            bucket.pointee = n
            h[0] &+= 1
            return emptyResult
        default:
            if i == nilIndex { return emptyResult }
            let old = block.nodes[Int(i)].value
            let next = block.nodes[Int(i)].next
            if previous == nilIndex { bucket.pointee = next } else { block.nodes[Int(previous)].next = next }
            block.nodes[Int(i)].next = h[1]
            h[1] = i
            h[0] &-= 1
            return old
        }
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { op.code == get }
}

public struct HashTableWorkload: Workload {
    public typealias ThreadState = DataThreadState
    public struct Model: SequentialModel {
        var table: [UInt64: UInt64] = [:]
        public mutating func apply(_ op: Operation) -> UInt64 {
            switch op.code {
            case ChainedHashTable.get: return table[op.arg0] ?? emptyResult
            case ChainedHashTable.put: return table.updateValue(op.arg1, forKey: op.arg0) ?? emptyResult
            default: return table.removeValue(forKey: op.arg0) ?? emptyResult
            }
        }
        public func contents() -> [UInt64] { table.keys.sorted().flatMap { [$0, table[$0]!] } }
    }

    public static let name = "hashtable"
    public let structure: ChainedHashTable
    public var record: UnsafeMutablePointer<HarnessRecord> { structure.block.record }
    @usableFromInline let outside: OutsideWork
    @usableFromInline let keys: UInt64
    @usableFromInline let readPercent: UInt64
    let memory: LabMemory
    let bucketCount: Int

    /// `keys` in 1...2^24, `readPercent` in 0...100 (checked by the catalog).
    public init(_ environment: WorkloadEnvironment, keys: Int, readPercent: Int, outside: OutsideWork) {
        memory = environment.memory
        let buckets = Self.bucketCount(keys: keys)
        bucketCount = buckets
        let block = NodeBlock(memory: memory, capacity: keys, extraBytes: buckets * 8, freeWord: 1)
        block.header[2] = UInt64(buckets - 1)
        let bucketArray = block.extra.bindMemory(to: UInt64.self, capacity: buckets)
        for b in 0..<buckets { bucketArray[b] = nilIndex }
        structure = ChainedHashTable(block: block, buckets: bucketArray)
        self.keys = UInt64(keys)
        self.readPercent = UInt64(readPercent)
        self.outside = outside
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState { DataThreadState(thread: thread, seed: seed) }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation {
        Self.operation(&state, keys: keys, readPercent: readPercent)
    }

    /// The operation stream, shared with the RCU twin (RCUHashTable.swift) so that both draw the
    /// same operations from the same seed: a key below `keys`, a get with `readPercent` percent
    /// chance, else a put (a value below 2^48) or a delete, evenly.
    @inline(__always)
    static func operation(_ state: inout DataThreadState, keys: UInt64, readPercent: UInt64) -> Operation {
        let key = state.key(below: keys)
        if state.chance(percent: readPercent) { return Operation(code: ChainedHashTable.get, arg0: key) }
        if state.random.next() & 1 == 0 {
            return Operation(code: ChainedHashTable.put, arg0: key, arg1: state.random.next() >> 16)
        }
        return Operation(code: ChainedHashTable.delete, arg0: key)
    }

    /// Buckets for `keys` keys: the power of two at least keys/4 (chains of about four when full).
    static func bucketCount(keys: Int) -> Int {
        var buckets = 1
        while buckets * 4 < keys { buckets <<= 1 }
        return buckets
    }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { outside.run(&state.outsideRandom) }

    public func makeModel() -> Model { Model() }

    public func invariantFailure(applied: UInt64) -> String? {
        let block = structure.block
        var seen = Set<UInt64>()
        var total = 0
        for b in 0..<bucketCount {
            guard let chain = block.walk(from: structure.buckets[b]) else { return "bucket \(b) is cyclic or leaves the pool" }
            for i in chain {
                let key = block.nodes[i].key
                if Int(key & block.header[2]) != b { return "key \(key) is in bucket \(b)" }
                if !seen.insert(key).inserted { return "key \(key) is in the table twice" }
            }
            total += chain.count
        }
        if UInt64(total) != block.header[0] { return "\(total) nodes in the buckets, count says \(block.header[0])" }
        guard let free = block.walk(from: block.header[1]), free.count + total == block.capacity else {
            return "nodes lost: \(total) in the table and the free list does not hold the rest"
        }
        return nil
    }

    public func contents() -> [UInt64] {
        var pairs: [(UInt64, UInt64)] = []
        for b in 0..<bucketCount {
            for i in structure.block.walk(from: structure.buckets[b]) ?? [] {
                pairs.append((structure.block.nodes[i].key, structure.block.nodes[i].value))
            }
        }
        return pairs.sorted { $0.0 < $1.0 }.flatMap { [$0.0, $0.1] }
    }

    public func sharedMemory() -> [UnsafeRawBufferPointer] { [structure.block.memory] }

    public func deallocate() { structure.block.deallocate(memory) }
}
