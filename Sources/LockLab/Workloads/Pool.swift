// The node pool the linked workloads (queue, stack, hash table, list) share: a fixed array of
// nodes allocated with the structure and a free list threaded through `next`, so that no
// operation allocates. Nodes are addressed by index; `nilIndex` ends a list. Touched only under
// the structure's exclusion, like the structure itself.

/// A node: a key (or value), a second word (the hash table's value), the next node's index.
@frozen
public struct PoolNode {
    public var key: UInt64
    public var value: UInt64
    public var next: UInt64
}

/// Index that ends a list.
public let nilIndex: UInt64 = .max

/// A block of shared memory: the header line (harness record, then up to four header words) and
/// the node array after it.
@frozen
public struct NodeBlock {
    public let raw: UnsafeMutableRawPointer
    public let bytes: Int
    /// Header words after the harness record: 4 UInt64s.
    public let header: UnsafeMutablePointer<UInt64>
    public let nodes: UnsafeMutablePointer<PoolNode>
    public let capacity: Int

    /// Allocates the header line and `capacity` nodes (plus `extraBytes` after them, 64-aligned),
    /// threads every node onto the free list, whose head is header word `freeWord`.
    public init(memory: LabMemory, capacity: Int, extraBytes: Int = 0, freeWord: Int?) {
        let nodeBytes = (capacity * MemoryLayout<PoolNode>.stride + 63) / 64 * 64
        bytes = 64 + nodeBytes + extraBytes
        raw = memory.allocate(bytes: bytes)
        header = (raw + HarnessRecord.bytes).bindMemory(to: UInt64.self, capacity: 4)
        nodes = (raw + 64).bindMemory(to: PoolNode.self, capacity: max(1, capacity))
        self.capacity = capacity
        for i in 0..<capacity { nodes[i] = PoolNode(key: 0, value: 0, next: i + 1 < capacity ? UInt64(i + 1) : nilIndex) }
        if let freeWord { header[freeWord] = capacity > 0 ? 0 : nilIndex }
    }

    public var record: UnsafeMutablePointer<HarnessRecord> { raw.bindMemory(to: HarnessRecord.self, capacity: 1) }
    /// Bytes after the nodes (`extraBytes`).
    public var extra: UnsafeMutableRawPointer {
        raw + 64 + (capacity * MemoryLayout<PoolNode>.stride + 63) / 64 * 64
    }

    public func deallocate(_ memory: LabMemory) { memory.deallocate(raw, bytes: bytes) }

    /// The whole block: header line, nodes, extra bytes.
    public var memory: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: raw, count: bytes) }

    /// Walks a list from `head`: its nodes' indices, or nil when it is longer than the pool (a
    /// cycle) or leaves the pool.
    public func walk(from head: UInt64) -> [Int]? {
        var out: [Int] = []
        var i = head
        while i != nilIndex {
            guard i < UInt64(capacity), out.count <= capacity else { return nil }
            out.append(Int(i))
            i = nodes[Int(i)].next
        }
        return out
    }
}

/// Per-thread state of the data-structure workloads: an operation stream, the outside-wait
/// stream, and a sequence for unique values.
public struct DataThreadState {
    @usableFromInline var random: SplitMix64
    @usableFromInline var outsideRandom: UInt64
    /// Pairs (enqueue then dequeue, push then pop): which half comes next.
    @usableFromInline var second: Bool
    /// Unique values: (thread + 1) << 40 | sequence.
    @usableFromInline var nextValue: UInt64

    init(thread: ThreadSlot, seed: UInt64) {
        random = SplitMix64(seed: SplitMix64.seed(seed, thread: thread.index))
        outsideRandom = SplitMix64.seed(seed ^ 0x5bd1_e995, thread: thread.index)
        second = false
        nextValue = UInt64(thread.index + 1) << 40
    }

    /// A key uniform in 0..<keys.
    @inline(__always)
    mutating func key(below keys: UInt64) -> UInt64 {
        random.next().multipliedFullWidth(by: keys).high
    }

    /// A percentage draw: true with probability percent / 100.
    @inline(__always)
    mutating func chance(percent: UInt64) -> Bool {
        random.next().multipliedFullWidth(by: 100).high < percent
    }
}
