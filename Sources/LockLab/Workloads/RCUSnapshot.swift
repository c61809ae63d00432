// snapshot, RCU twin: the same operations and model as snapshot (Snapshot.swift), over versions an
// RCU writer publishes: liburcu's test_urcu loop (tests/benchmark/test_urcu.c: a reader
// dereferences the current object and checks it, a writer allocates a new one, publishes it with
// rcu_xchg_pointer and frees the old one after synchronize_rcu).
// Read: dereference the current version (acquire), load every word of it; the version if all agree
// and none is poison, else `snapshotTornResult` (two versions: a node reused under the reader) or
// `rcuPoisonedResult` (a freed node): both fail the run, as test_urcu's `assert(*p == 8)` does.
// Update (under the executor's writer lock): a node from the pool, every word the old version + 1,
// publish (release), retire the old node; returns the old version.
// Invariants after the run: no torn or poisoned read; the current node's words all equal the
// updates applied; the pool's accounting (Reclamation.swift) with one live node.

import CShims

/// What an RCU read returns when it met a freed node's poison.
public let rcuPoisonedResult: UInt64 = .max - 2

/// An RCU twin: a workload whose structure is built on a flavour's domain, which its executor
/// (RCUExecutor) shares.
public protocol RCUWorkload: Workload {
    associatedtype Flavor: RCUFlavor
    var domain: RCUDomain<Flavor> { get }
}

/// Per-thread state of the RCU twins of the data-structure workloads (hashtable, list): the
/// locked twin's streams (the same operations from the same seed) and the thread's count of
/// poisoned reads, on a line of its own (counting writes nothing shared).
public struct RCUDataThreadState {
    @usableFromInline var data: DataThreadState
    @usableFromInline let poisoned: UnsafeMutablePointer<UInt64>
}

@frozen
public struct RCUSnapshotObject: SequentialStructure {
    /// The published pointer (a node's address), in the harness record's line after its words.
    @usableFromInline let current: UnsafeMutablePointer<UInt64>
    @usableFromInline let reclaimer: RCUReclaimer
    @usableFromInline let wordCount: Int
    /// Bytes from a node's start to its first word (the reclaimer's link word's line).
    @usableFromInline static let payloadOffset = 64

    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        if op.code == SnapshotObject.read {
            let node = UnsafeMutableRawPointer(bitPattern: UInt(RCUPointer.dereference(current))).unsafelyUnwrapped
            let words = (node + Self.payloadOffset).assumingMemoryBound(to: UInt64.self)
            // Relaxed: the acquire dereference ordered the node's initialising stores before these.
            let first = cshims_u64_load_relaxed(words)
            var differ: UInt64 = 0
            var i = 1
            while i < wordCount {
                differ |= cshims_u64_load_relaxed(words + i) ^ first
                i &+= 1
            }
            if first == rcuPoison { return rcuPoisonedResult }
            return differ != 0 ? snapshotTornResult : first
        }
        // The writer lock is held: the current pointer and its node are the writer's to read plainly.
        let old = UnsafeMutableRawPointer(bitPattern: UInt(cshims_u64_load_relaxed(current))).unsafelyUnwrapped
        let version = cshims_u64_load_relaxed((old + Self.payloadOffset).assumingMemoryBound(to: UInt64.self))
        guard let fresh = reclaimer.allocate() else { preconditionFailure("RCU pool exhausted: a thread leaked nodes") }
        let words = (fresh + Self.payloadOffset).assumingMemoryBound(to: UInt64.self)
        var i = 0
        while i < wordCount {
            cshims_u64_store_relaxed(words + i, version &+ 1)
            i &+= 1
        }
        RCUPointer.assign(current, UInt64(UInt(bitPattern: fresh)))
        reclaimer.retire(old)
        return version
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { op.code == SnapshotObject.read }

    /// Reads follow published pointers to nodes freed only after a grace period.
    public static var readsTolerateConcurrentUpdates: Bool { true }
}

public struct RCUSnapshotWorkload<Flavor: RCUFlavor>: RCUWorkload {
    public typealias ThreadState = SnapshotWorkload.ThreadState
    public typealias Model = SnapshotWorkload.Model

    public static var name: String { "snapshot" }
    public let structure: RCUSnapshotObject
    public let record: UnsafeMutablePointer<HarnessRecord>
    public let domain: RCUDomain<Flavor>
    /// The locked twin's generator, counters and outside work (no shared object of its own).
    let twin: SnapshotWorkload
    let memory: LabMemory

    /// `lines` in 1...65536, `readPercent` in 0...100; `options` are the RCU executor's (flavour,
    /// `batch`). Throws `LabError.impossible` when the pool would not fit.
    public init(_ environment: WorkloadEnvironment, lines: Int, readPercent: Int, outside: OutsideWork,
                options: LockOptions) throws {
        memory = environment.memory
        twin = SnapshotWorkload(environment, lines: 1, readPercent: readPercent, outside: outside)
        record = twin.record
        domain = try RCUDomain<Flavor>(threads: environment.threads, memory: memory, options: options,
                                       nodeBytes: RCUSnapshotObject.payloadOffset + 64 * lines, live: 1, perUpdate: 1)
        structure = RCUSnapshotObject(current: (UnsafeMutableRawPointer(record) + HarnessRecord.bytes).assumingMemoryBound(to: UInt64.self),
                                      reclaimer: domain.reclaimer, wordCount: lines * SnapshotWorkload.lineWords)
        // Version 0 everywhere, published before any thread starts.
        let first = domain.reclaimer.allocate()!
        (first + RCUSnapshotObject.payloadOffset).initializeMemory(as: UInt64.self, repeating: 0, count: structure.wordCount)
        RCUPointer.assign(structure.current, UInt64(UInt(bitPattern: first)))
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState { twin.makeThreadState(for: thread, seed: seed) }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation { twin.nextOperation(&state) }

    @inline(__always)
    public func completed(_ op: Operation, result: UInt64, _ state: inout ThreadState) {
        // A poisoned read counts with the torn ones, on the thread's own line.
        if result == snapshotTornResult || result == rcuPoisonedResult {
            twin.completed(op, result: snapshotTornResult, &state)
        }
    }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { twin.outsideCriticalSection(&state) }

    public func makeModel() -> Model { Model() }

    var currentWords: UnsafeMutablePointer<UInt64> {
        (UnsafeMutableRawPointer(bitPattern: UInt(structure.current.pointee))! + RCUSnapshotObject.payloadOffset)
            .assumingMemoryBound(to: UInt64.self)
    }

    public func invariantFailure(applied: UInt64) -> String? {
        let bad = twin.tornReads
        if bad > 0 {
            return "\(bad) reads saw a torn or poisoned object: a node was freed or reused while a reader held it (a grace period ended too soon)"
        }
        let words = currentWords
        for i in 0..<structure.wordCount where words[i] != words[0] {
            return "word \(i) of the current version holds \(words[i]), word 0 \(words[0]): an update was torn"
        }
        return domain.reclaimer.accountingFailure(live: 1)
    }

    public func contents() -> [UInt64] { [currentWords.pointee] }

    public func sharedMemory() -> [UnsafeRawBufferPointer] {
        [UnsafeRawBufferPointer(start: record, count: 64),
         UnsafeRawBufferPointer(start: domain.reclaimer.pool, count: domain.reclaimer.nodeBytes * domain.reclaimer.capacity)]
    }

    public func deallocate() {
        domain.deallocate()
        twin.deallocate()
    }
}
