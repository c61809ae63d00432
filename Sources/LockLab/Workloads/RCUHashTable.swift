// hashtable, RCU twin: the same operations, generator and model as hashtable (HashTable.swift), on
// per-bucket chains that readers traverse while a writer changes them (McKenney & Slingwine,
// "Read-Copy Update", PDCS 1998; the kernel's hlist_*_rcu and liburcu's rculist.h: publish with
// rcu_assign_pointer, unlink with one store, free after a grace period).
// get: inside the read-side section, the bucket's head and every node's next pointer dereferenced
// (acquire), key and value loaded relaxed (a node never changes between its publication and its
// grace period's end). Under the writer lock: put of a new key fills a node from the pool and
// publishes it at the bucket's head; put of a present key publishes a copy with the new value in
// the predecessor's link (the copy's next is the old node's) and retires the old node; delete
// stores the node's next into the predecessor's link and retires it. An unlinked node keeps its
// next pointer, so a reader standing on it walks on into the live chain.
// A read meets a freed node only if a grace period ended under it: its words are the poison then,
// and the read returns `rcuPoisonedResult` (checked before its next pointer is followed), which
// fails the run; a read that walks more nodes than the pool holds (nodes reused under it) does too.
// Each read returns a state of its version window (every node it reaches was linked at some
// moment since the read began, and the chain's order is never changed).
// Invariants after the run: no poisoned read; every node in its key's bucket, no key twice, no
// poison in a linked node, `count` nodes; the pool's accounting (Reclamation.swift) with `count` live.

import CShims

/// Nodes of the reclaimer's pool, 32 bytes: word 0 the reclaimer's link, 1 key, 2 value, 3 next
/// (a node's address, 0 ends the chain). The header line: the harness record, then the live count
/// (writer only). The bucket heads follow in lines of their own.
@frozen
public struct RCUChainedHashTable: SequentialStructure {
    @usableFromInline static let keyWord = 1, valueWord = 2, nextWord = 3
    public static let nodeBytes = 32
    @usableFromInline let buckets: UnsafeMutablePointer<UInt64>
    @usableFromInline let mask: UInt64
    @usableFromInline let count: UnsafeMutablePointer<UInt64>
    @usableFromInline let reclaimer: RCUReclaimer
    /// More nodes than a chain can hold: a read that walks this many met nodes reused under it.
    @usableFromInline let maxSteps: Int

    @inline(__always) @usableFromInline
    static func word(_ node: UInt64, _ w: Int) -> UnsafeMutablePointer<UInt64> {
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(node)).unsafelyUnwrapped + w
    }

    /// get(key): the value or empty; put(key, value): the old value or empty; delete(key): the
    /// old value or empty (the locked twin's results). A read that met a freed node returns
    /// `rcuPoisonedResult`.
    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        let bucket = buckets + Int(op.arg0 & mask)
        if op.code == ChainedHashTable.get {
            var p = RCUPointer.dereference(bucket)
            var steps = 0
            while p != 0 {
                // Relaxed: the acquire load of the link that led here ordered the node's
                // initialising stores before these loads.
                let key = cshims_u64_load_relaxed(Self.word(p, Self.keyWord))
                if key == op.arg0 {
                    let value = cshims_u64_load_relaxed(Self.word(p, Self.valueWord))
                    return value == rcuPoison ? rcuPoisonedResult : value
                }
                steps &+= 1
                if key == rcuPoison || steps > maxSteps { return rcuPoisonedResult }
                p = RCUPointer.dereference(Self.word(p, Self.nextWord))
                if p == rcuPoison { return rcuPoisonedResult }
            }
            return emptyResult
        }
        // The writer lock is held: the links are the writer's to load relaxed (the lock ordered
        // the previous writers' stores before them). Stores readers may see are atomic.
        var link = bucket
        var p = cshims_u64_load_relaxed(link)
        while p != 0, cshims_u64_load_relaxed(Self.word(p, Self.keyWord)) != op.arg0 {
            link = Self.word(p, Self.nextWord)
            p = cshims_u64_load_relaxed(link)
        }
        if op.code == ChainedHashTable.put {
            guard let fresh = reclaimer.allocate() else { preconditionFailure("RCU pool exhausted: a thread leaked nodes") }
            let n = UInt64(UInt(bitPattern: fresh))
            cshims_u64_store_relaxed(Self.word(n, Self.keyWord), op.arg0)
            cshims_u64_store_relaxed(Self.word(n, Self.valueWord), op.arg1)
            if p != 0 {
                // Replace: the copy takes the old node's place (its next, then its link).
                let old = cshims_u64_load_relaxed(Self.word(p, Self.valueWord))
                cshims_u64_store_relaxed(Self.word(n, Self.nextWord), cshims_u64_load_relaxed(Self.word(p, Self.nextWord)))
                RCUPointer.assign(link, n)
                reclaimer.retire(UnsafeMutableRawPointer(bitPattern: UInt(p)).unsafelyUnwrapped)
                return old
            }
            cshims_u64_store_relaxed(Self.word(n, Self.nextWord), cshims_u64_load_relaxed(bucket))
            RCUPointer.assign(bucket, n)
            count.pointee &+= 1
            return emptyResult
        }
        if p == 0 { return emptyResult }
        let old = cshims_u64_load_relaxed(Self.word(p, Self.valueWord))
        // Unlink; the node keeps its next (a reader on it walks on) until its grace period ends.
        RCUPointer.assign(link, cshims_u64_load_relaxed(Self.word(p, Self.nextWord)))
        reclaimer.retire(UnsafeMutableRawPointer(bitPattern: UInt(p)).unsafelyUnwrapped)
        count.pointee &-= 1
        return old
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { op.code == ChainedHashTable.get }

    /// Reads follow published pointers to nodes freed only after a grace period.
    public static var readsTolerateConcurrentUpdates: Bool { true }
}

public struct RCUHashTableWorkload<Flavor: RCUFlavor>: RCUWorkload {
    public typealias ThreadState = RCUDataThreadState
    public typealias Model = HashTableWorkload.Model

    public static var name: String { HashTableWorkload.name }
    public let structure: RCUChainedHashTable
    public let record: UnsafeMutablePointer<HarnessRecord>
    /// The domain, the per-thread poison lines, the outside work and the generator's parameters.
    @usableFromInline let parts: RCUKeyedTwinParts<Flavor>
    public var domain: RCUDomain<Flavor> { parts.domain }
    /// The header line and the bucket lines.
    let raw: UnsafeMutableRawPointer
    let bytes: Int
    let bucketCount: Int

    /// `keys` in 1...2^24, `readPercent` in 0...100 (checked by the catalog); `options` are the RCU
    /// executor's (flavour, `batch`). Throws `LabError.impossible` when the pool would not fit.
    public init(_ environment: WorkloadEnvironment, keys: Int, readPercent: Int, outside: OutsideWork,
                options: LockOptions) throws {
        bucketCount = HashTableWorkload.bucketCount(keys: keys)
        parts = try RCUKeyedTwinParts<Flavor>(environment, keys: keys, readPercent: readPercent, outside: outside,
                                              options: options, nodeBytes: RCUChainedHashTable.nodeBytes)
        let memory = environment.memory, domain = parts.domain
        bytes = 64 + (bucketCount * 8 + 63) / 64 * 64
        raw = memory.allocate(bytes: bytes)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        record = raw.bindMemory(to: HarnessRecord.self, capacity: 1)
        structure = RCUChainedHashTable(buckets: (raw + 64).bindMemory(to: UInt64.self, capacity: bucketCount),
                                        mask: UInt64(bucketCount - 1),
                                        count: (raw + HarnessRecord.bytes).bindMemory(to: UInt64.self, capacity: 1),
                                        reclaimer: domain.reclaimer, maxSteps: domain.reclaimer.capacity)
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState { parts.makeThreadState(for: thread, seed: seed) }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation {
        HashTableWorkload.operation(&state.data, keys: parts.keys, readPercent: parts.readPercent)
    }

    @inline(__always)
    public func completed(_ op: Operation, result: UInt64, _ state: inout ThreadState) { parts.completed(result, &state) }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { parts.outside.run(&state.data.outsideRandom) }

    public func makeModel() -> Model { Model() }

    /// Poisoned reads, all threads.
    public var poisonedReads: UInt64 { parts.poisonedReads }

    /// The chain of bucket `b` (key, value pairs), or why it is broken.
    func chain(_ b: Int) -> Result<[(UInt64, UInt64)], ChainFailure> {
        rcuChain(from: structure.buckets[b], reclaimer: domain.reclaimer, words: [RCUChainedHashTable.keyWord, RCUChainedHashTable.valueWord],
                 next: RCUChainedHashTable.nextWord).map { $0.map { ($0[0], $0[1]) } }
    }

    public func invariantFailure(applied: UInt64) -> String? {
        if let failure = parts.poisonFailure { return failure }
        var seen = Set<UInt64>()
        var total = 0
        for b in 0..<bucketCount {
            switch chain(b) {
            case .failure(let f): return "bucket \(b): \(f.text)"
            case .success(let pairs):
                for (key, _) in pairs {
                    if Int(key & structure.mask) != b { return "key \(key) is in bucket \(b)" }
                    if !seen.insert(key).inserted { return "key \(key) is in the table twice" }
                }
                total += pairs.count
            }
        }
        if UInt64(total) != structure.count.pointee { return "\(total) nodes in the buckets, count says \(structure.count.pointee)" }
        return domain.reclaimer.accountingFailure(live: total)
    }

    public func contents() -> [UInt64] {
        var pairs: [(UInt64, UInt64)] = []
        for b in 0..<bucketCount { pairs += (try? chain(b).get()) ?? [] }
        return pairs.sorted { $0.0 < $1.0 }.flatMap { [$0.0, $0.1] }
    }

    public func sharedMemory() -> [UnsafeRawBufferPointer] {
        [UnsafeRawBufferPointer(start: raw, count: bytes), parts.pool]
    }

    public func deallocate() {
        parts.memory.deallocate(raw, bytes: bytes)
        parts.deallocate()
    }
}

/// Why a chain of RCU pool nodes is broken (after a run).
struct ChainFailure: Error {
    let text: String
}

/// Walks a chain of the reclaimer's nodes from `head` (0 ends it), linked through word `next`,
/// after the run: each node's `words`, or the first fault (a link outside the pool or off a
/// node's start, a cycle, a linked node's poison).
func rcuChain(from head: UInt64, reclaimer: RCUReclaimer, words: [Int], next: Int) -> Result<[[UInt64]], ChainFailure> {
    let start = UInt64(UInt(bitPattern: reclaimer.pool))
    let end = start + UInt64(reclaimer.nodeBytes * reclaimer.capacity)
    var out: [[UInt64]] = []
    var p = head
    while p != 0 {
        guard p >= start, p < end, (p - start) % UInt64(reclaimer.nodeBytes) == 0 else {
            return .failure(ChainFailure(text: "a link (\(p)) leaves the pool or misses a node's start"))
        }
        guard out.count < reclaimer.capacity else { return .failure(ChainFailure(text: "the chain is cyclic")) }
        let node = UnsafeMutablePointer<UInt64>(bitPattern: UInt(p))!
        let values = words.map { node[$0] }
        if values.contains(rcuPoison) || node[next] == rcuPoison {
            return .failure(ChainFailure(text: "a linked node holds the poison: it was freed while still in the structure"))
        }
        out.append(values)
        p = node[next]
    }
    return .success(out)
}

/// What the hashtable and list RCU twins share: the flavour's domain (sized for `keys` live nodes,
/// one per update), one line per thread for its poisoned reads, the outside work and the
/// generator's parameters.
@usableFromInline
struct RCUKeyedTwinParts<Flavor: RCUFlavor> {
    let domain: RCUDomain<Flavor>
    @usableFromInline let outside: OutsideWork
    @usableFromInline let keys: UInt64
    @usableFromInline let readPercent: UInt64
    let poisonedLines: ReaderLines
    let threads: Int
    let memory: LabMemory

    /// Throws `LabError.impossible` when the pool would not fit.
    init(_ environment: WorkloadEnvironment, keys: Int, readPercent: Int, outside: OutsideWork,
         options: LockOptions, nodeBytes: Int) throws {
        memory = environment.memory
        threads = environment.threads
        domain = try RCUDomain<Flavor>(threads: threads, memory: memory, options: options,
                                       nodeBytes: nodeBytes, live: keys, perUpdate: 1)
        poisonedLines = ReaderLines(count: threads, memory: memory)
        self.keys = UInt64(keys)
        self.readPercent = UInt64(readPercent)
        self.outside = outside
    }

    func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> RCUDataThreadState {
        RCUDataThreadState(data: DataThreadState(thread: thread, seed: seed), poisoned: poisonedLines.word(thread.index % threads))
    }

    /// A poisoned read counts on the thread's own line.
    @inline(__always) @usableFromInline
    func completed(_ result: UInt64, _ state: inout RCUDataThreadState) {
        if result == rcuPoisonedResult { state.poisoned.pointee &+= 1 }
    }

    /// Poisoned reads, all threads.
    var poisonedReads: UInt64 { (0..<threads).reduce(0) { $0 &+ poisonedLines.word($1).pointee } }

    /// The run's failure if any read met a poisoned node.
    var poisonFailure: String? {
        let bad = poisonedReads
        return bad > 0 ? "\(bad) reads met a poisoned node: a node was freed while a reader held it (a grace period ended too soon)" : nil
    }

    /// The reclaimer's pool, for `sharedMemory`.
    var pool: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: domain.reclaimer.pool, count: domain.reclaimer.nodeBytes * domain.reclaimer.capacity)
    }

    func deallocate() {
        domain.deallocate()
        poisonedLines.deallocate(memory)
    }
}
