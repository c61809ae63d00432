// hashtable over liburcu's cds_lfht (the urcu-lfht entry, RCU/URCULFHT.swift): the same operations,
// key generator and sequential model as the locked twin (HashTable.swift), so results compare and
// the harness's model check replays the same model; the structure is liburcu's lock-free
// resizable hash table (liburcu-cds 0.13.2), reached through the CURCU shim (Sources/CURCU/shim.h).
// get(key): cds_lfht_lookup (the key is its own hash; the shim's match compares keys), the item's
// value or empty. put(key, value): a fresh item (malloc, as liburcu's test_urcu_hash: the reference
// structure's cost includes malloc and free) through cds_lfht_add_replace, which returns the node it
// replaced in the same atomic commit: its value is the old value, so put's result is the model's
// even were puts on one key concurrent; the replaced item goes to call_rcu. delete(key): lookup and
// cds_lfht_del; a del that fails (the node already removed by a concurrent update) looks again,
// so the value returned is that of the node this delete removed. Every operation runs inside the
// flavour's read-side section (the executor's), which cds_lfht requires of updates too.
// Reclamation: call_rcu (the flavour's worker thread frees items after a grace period), not the
// lab's pool and limbo lists: the run reports no grace periods or high-water mark of its own.
// Invariants after the run: no key twice, every key below `keys`, `count` (header word 3 of the
// twin's record line, written under the writer lock) items in the table; contents equal the
// model's (the validator).

import CShims
import CURCU

@frozen
public struct URCULFHashTable<Flavor: LiburcuFlavor>: SequentialStructure {
    @usableFromInline let table: OpaquePointer
    @usableFromInline let count: UnsafeMutablePointer<UInt64>
    @usableFromInline static var rcuOffset: Int { MemoryLayout<curcu_lfht_item>.offset(of: \curcu_lfht_item.rcu)! }

    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        switch op.code {
        case ChainedHashTable.get:
            // The item was initialised before add_replace's full fence published it, and is never
            // written after: a plain load of its value.
            guard let item = curcu_lfht_lookup(table, op.arg0) else { return emptyResult }
            return item.pointee.value
        case ChainedHashTable.put:
            guard let fresh = curcu_lfht_item_new(op.arg0, op.arg1) else { preconditionFailure("urcu-lfht: malloc failed") }
            guard let old = curcu_lfht_add_replace(table, fresh) else {
                count.pointee &+= 1
                return emptyResult
            }
            let value = old.pointee.value
            retire(old)
            return value
        default:
            while true {
                guard let item = curcu_lfht_lookup(table, op.arg0) else { return emptyResult }
                let value = item.pointee.value
                if curcu_lfht_del(table, item) == 0 {
                    count.pointee &-= 1
                    retire(item)
                    return value
                }
            }
        }
    }

    /// call_rcu: freed by the flavour's worker thread after a grace period.
    @inline(__always) @usableFromInline
    func retire(_ item: UnsafeMutablePointer<curcu_lfht_item>) {
        let head = (UnsafeMutableRawPointer(item) + Self.rcuOffset).assumingMemoryBound(to: rcu_head.self)
        Flavor.callRCU(head, curcu_lfht_item_reclaim)
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { op.code == ChainedHashTable.get }

    /// Reads follow cds_lfht's RCU-protected chains to items freed only after a grace period.
    public static var readsTolerateConcurrentUpdates: Bool { true }
}

public struct URCULFHashTableWorkload<Flavor: LiburcuFlavor>: Workload {
    public typealias ThreadState = HashTableWorkload.ThreadState
    public typealias Model = HashTableWorkload.Model

    public static var name: String { "hashtable" }
    public let structure: URCULFHashTable<Flavor>
    public var record: UnsafeMutablePointer<HarnessRecord> { twin.record }
    /// The locked twin's generator, record line and outside work (its own table stays empty).
    let twin: HashTableWorkload
    /// A flavour instance for the main thread's walks (liburcu's flavours keep their state global).
    let flavor: Flavor
    let keys: UInt64

    /// `keys` in 1...2^24, `readPercent` in 0...100 (checked by the catalog); the table starts
    /// with the twin's bucket count (about keys/4, a power of two) and never shrinks below it.
    /// Throws `LabError.impossible` when cds_lfht_new fails.
    public init(_ environment: WorkloadEnvironment, keys: Int, readPercent: Int, outside: OutsideWork) throws {
        twin = HashTableWorkload(environment, keys: keys, readPercent: readPercent, outside: outside)
        self.keys = UInt64(keys)
        do {
            flavor = try Flavor(threads: 1, memory: environment.memory, options: LockOptions())
        } catch {
            twin.deallocate()
            throw error
        }
        guard let table = curcu_lfht_new(UInt(twin.bucketCount), Flavor.flavorStruct) else {
            twin.deallocate()
            throw LabError.impossible("urcu-lfht: cds_lfht_new(\(twin.bucketCount) buckets) failed")
        }
        let count = twin.structure.block.header + 3
        count.pointee = 0
        structure = URCULFHashTable(table: table, count: count)
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState { twin.makeThreadState(for: thread, seed: seed) }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation { twin.nextOperation(&state) }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { twin.outsideCriticalSection(&state) }

    public func makeModel() -> Model { Model() }

    /// The items, walked by the calling thread registered with the flavour, in a read-side section.
    func items() -> [UnsafeMutablePointer<curcu_lfht_item>] {
        var reader = flavor.register(thread: 0)
        flavor.readLock(&reader)
        var out: [UnsafeMutablePointer<curcu_lfht_item>] = []
        var iter = cds_lfht_iter()
        var item = curcu_lfht_first(structure.table, &iter)
        while let i = item {
            out.append(i)
            item = curcu_lfht_next(structure.table, &iter)
        }
        flavor.readUnlock(&reader)
        flavor.unregister(&reader)
        return out
    }

    public func invariantFailure(applied: UInt64) -> String? {
        var seen = Set<UInt64>()
        let all = items()
        for item in all {
            let key = item.pointee.key
            if key >= keys { return "key \(key) is outside the key range 0..<\(keys)" }
            if !seen.insert(key).inserted { return "key \(key) is in the table twice" }
        }
        if UInt64(all.count) != structure.count.pointee { return "\(all.count) items in the table, count says \(structure.count.pointee)" }
        return nil
    }

    public func contents() -> [UInt64] {
        items().map { ($0.pointee.key, $0.pointee.value) }.sorted { $0.0 < $1.0 }.flatMap { [$0.0, $0.1] }
    }

    /// The record line (the table's memory is liburcu's, allocated by malloc and its own mmap).
    public func sharedMemory() -> [UnsafeRawBufferPointer] { [twin.sharedMemory()[0]] }

    /// Every item out and freed (after a grace period), every queued call_rcu run (rcu_barrier),
    /// then the table destroyed.
    public func deallocate() {
        var reader = flavor.register(thread: 0)
        flavor.readLock(&reader)
        var removed: [UnsafeMutablePointer<curcu_lfht_item>] = []
        var iter = cds_lfht_iter()
        var item = curcu_lfht_first(structure.table, &iter)
        while let i = item {
            if curcu_lfht_del(structure.table, i) == 0 { removed.append(i) }
            item = curcu_lfht_next(structure.table, &iter)
        }
        flavor.readUnlock(&reader)
        flavor.synchronize(&reader)
        for i in removed { curcu_lfht_item_free_now(i) }
        Flavor.barrier()
        _ = curcu_lfht_destroy(structure.table)
        flavor.unregister(&reader)
        flavor.deallocate()
        twin.deallocate()
    }
}

extension WorkloadSpec {
    /// The hashtable workload over cds_lfht with flavour `F` (urcu-lfht). Throws
    /// `LabError.impossible` for any other workload (`pairingRefusal` says it first) or when
    /// the table cannot be made.
    func lfhtWorkload<F: LiburcuFlavor>(_ flavor: F.Type, environment: WorkloadEnvironment) throws -> URCULFHashTableWorkload<F> {
        guard kind == .hashtable else { throw LabError.impossible("urcu-lfht runs only the hashtable workload, not \(label)") }
        return try URCULFHashTableWorkload<F>(environment, keys: options.int("keys"), readPercent: options.int("read-ratio"),
                                              outside: OutsideWork(nanoseconds: ncsNanoseconds, random: ncsRandom))
    }
}
