// list, RCU twin: the same operations, generator and model as list (SortedList.swift), on a sorted
// singly linked list that readers traverse while a writer changes it (McKenney & Slingwine,
// "Read-Copy Update", PDCS 1998; the kernel's list_for_each_entry_rcu, liburcu's rculist.h).
// contains: inside the read-side section, the head and every node's next pointer dereferenced
// (acquire), keys loaded relaxed (a node never changes between its publication and its grace
// period's end). Under the writer lock: insert fills a node from the pool, points it at its
// successor and publishes it in its predecessor's link (release); delete stores the node's next
// into the predecessor's link and retires it. An unlinked node keeps its next pointer until its
// grace period ends, so a reader standing on it walks on into the live list.
// A read meets a freed node only if a grace period ended under it: its words are the poison then
// (checked before its next pointer is followed), and the read returns `rcuPoisonedResult`, which
// fails the run; so does a read that walks more nodes than the pool holds (nodes reused under it).
// Each read returns a state of its version window (every node it reaches was linked at some moment
// since the read began, and no node ever moves).
// Invariants after the run: no poisoned read; keys strictly ascending, no poison in a linked node,
// `count` nodes; the pool's accounting (Reclamation.swift) with `count` live.

import CShims

/// Nodes of the reclaimer's pool, 32 bytes (no node straddles a line): word 0 the reclaimer's
/// link, 1 key, 2 next (a node's address, 0 ends the list), 3 unused (poison). The header line:
/// the harness record, then the head and the live count (writer only).
@frozen
public struct RCUSortedLinkedList: SequentialStructure {
    @usableFromInline static let keyWord = 1, nextWord = 2
    public static let nodeBytes = 32
    @usableFromInline let head: UnsafeMutablePointer<UInt64>
    @usableFromInline let count: UnsafeMutablePointer<UInt64>
    @usableFromInline let reclaimer: RCUReclaimer
    /// More nodes than the list can hold: a read that walks this many met nodes reused under it.
    @usableFromInline let maxSteps: Int

    @inline(__always) @usableFromInline
    static func word(_ node: UInt64, _ w: Int) -> UnsafeMutablePointer<UInt64> {
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(node)).unsafelyUnwrapped + w
    }

    /// contains(key), insert(key), delete(key): 1 if the key was present (contains, delete) or
    /// absent and inserted (insert), else 0 (the locked twin's results). A read that met a freed
    /// node returns `rcuPoisonedResult`.
    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        if op.code == SortedLinkedList.contains {
            var p = RCUPointer.dereference(head)
            var steps = 0
            while p != 0 {
                // Relaxed: the acquire load of the link that led here ordered the node's
                // initialising stores before this load.
                let key = cshims_u64_load_relaxed(Self.word(p, Self.keyWord))
                // Keys are below 2^20: the poison is above every one and ends the walk.
                if key >= op.arg0 {
                    if key == rcuPoison { return rcuPoisonedResult }
                    return key == op.arg0 ? 1 : 0
                }
                steps &+= 1
                if steps > maxSteps { return rcuPoisonedResult }
                p = RCUPointer.dereference(Self.word(p, Self.nextWord))
                if p == rcuPoison { return rcuPoisonedResult }
            }
            return 0
        }
        // The writer lock is held: the links are the writer's to load relaxed (the lock ordered
        // the previous writers' stores before them). Stores readers may see are atomic.
        var link = head
        var p = cshims_u64_load_relaxed(link)
        while p != 0, cshims_u64_load_relaxed(Self.word(p, Self.keyWord)) < op.arg0 {
            link = Self.word(p, Self.nextWord)
            p = cshims_u64_load_relaxed(link)
        }
        let found = p != 0 && cshims_u64_load_relaxed(Self.word(p, Self.keyWord)) == op.arg0
        if op.code == SortedLinkedList.insert {
            if found { return 0 }
            guard let fresh = reclaimer.allocate() else { preconditionFailure("RCU pool exhausted: a thread leaked nodes") }
            let n = UInt64(UInt(bitPattern: fresh))
            cshims_u64_store_relaxed(Self.word(n, Self.keyWord), op.arg0)
            cshims_u64_store_relaxed(Self.word(n, Self.nextWord), p)
            RCUPointer.assign(link, n)
            count.pointee &+= 1
            return 1
        }
        if !found { return 0 }
        // Unlink; the node keeps its next (a reader on it walks on) until its grace period ends.
        RCUPointer.assign(link, cshims_u64_load_relaxed(Self.word(p, Self.nextWord)))
        reclaimer.retire(UnsafeMutableRawPointer(bitPattern: UInt(p)).unsafelyUnwrapped)
        count.pointee &-= 1
        return 1
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { op.code == SortedLinkedList.contains }

    /// Reads follow published pointers to nodes freed only after a grace period.
    public static var readsTolerateConcurrentUpdates: Bool { true }
}

public struct RCUListWorkload<Flavor: RCUFlavor>: RCUWorkload {
    public typealias ThreadState = RCUDataThreadState
    public typealias Model = ListWorkload.Model

    public static var name: String { ListWorkload.name }
    public let structure: RCUSortedLinkedList
    public let record: UnsafeMutablePointer<HarnessRecord>
    /// The domain, the per-thread poison lines, the outside work and the generator's parameters.
    @usableFromInline let parts: RCUKeyedTwinParts<Flavor>
    public var domain: RCUDomain<Flavor> { parts.domain }
    /// The header line.
    let raw: UnsafeMutableRawPointer

    /// `keys` in 1...2^20, `readPercent` in 0...100 (checked by the catalog); `options` are the RCU
    /// executor's (flavour, `batch`). Throws `LabError.impossible` when the pool would not fit.
    public init(_ environment: WorkloadEnvironment, keys: Int, readPercent: Int, outside: OutsideWork,
                options: LockOptions) throws {
        parts = try RCUKeyedTwinParts<Flavor>(environment, keys: keys, readPercent: readPercent, outside: outside,
                                              options: options, nodeBytes: RCUSortedLinkedList.nodeBytes)
        let memory = environment.memory, domain = parts.domain
        raw = memory.allocate(bytes: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
        record = raw.bindMemory(to: HarnessRecord.self, capacity: 1)
        let header = (raw + HarnessRecord.bytes).bindMemory(to: UInt64.self, capacity: 2)
        structure = RCUSortedLinkedList(head: header, count: header + 1, reclaimer: domain.reclaimer,
                                        maxSteps: domain.reclaimer.capacity)
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState { parts.makeThreadState(for: thread, seed: seed) }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation {
        ListWorkload.operation(&state.data, keys: parts.keys, readPercent: parts.readPercent)
    }

    @inline(__always)
    public func completed(_ op: Operation, result: UInt64, _ state: inout ThreadState) { parts.completed(result, &state) }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { parts.outside.run(&state.data.outsideRandom) }

    public func makeModel() -> Model { Model() }

    /// Poisoned reads, all threads.
    public var poisonedReads: UInt64 { parts.poisonedReads }

    func keysInList() -> Result<[UInt64], ChainFailure> {
        rcuChain(from: structure.head.pointee, reclaimer: domain.reclaimer, words: [RCUSortedLinkedList.keyWord],
                 next: RCUSortedLinkedList.nextWord).map { $0.map { $0[0] } }
    }

    public func invariantFailure(applied: UInt64) -> String? {
        if let failure = parts.poisonFailure { return failure }
        let keys: [UInt64]
        switch keysInList() {
        case .failure(let f): return "the list: \(f.text)"
        case .success(let k): keys = k
        }
        for k in 1..<max(1, keys.count) where keys[k - 1] >= keys[k] { return "keys not ascending at position \(k)" }
        if UInt64(keys.count) != structure.count.pointee { return "\(keys.count) nodes in the list, count says \(structure.count.pointee)" }
        return domain.reclaimer.accountingFailure(live: keys.count)
    }

    public func contents() -> [UInt64] { (try? keysInList().get()) ?? [] }

    public func sharedMemory() -> [UnsafeRawBufferPointer] {
        [UnsafeRawBufferPointer(start: raw, count: 64), parts.pool]
    }

    public func deallocate() {
        parts.memory.deallocate(raw, bytes: 64)
        parts.deallocate()
    }
}
