// Operations as data. A critical section is an operation on a shared sequential data structure,
// run by an executor (Executors/): a lock applies it in place (acquire, apply, release); a
// delegation executor publishes it and gets the result back. So an operation is a small value that
// fits a request line, and a result is one 64-bit word.
//
// A workload is a structure, a per-thread seeded operation generator (no allocation per operation:
// pools are preallocated) and the work outside the critical section. Each workload carries its
// sequential model (WorkloadModels.swift): the validator records the operations in the order they
// were applied (under exclusion, so the order is a linearisation), replays them on the model, and
// every result must match; then it checks the whole-run invariants.
//
// The harness's own words (the plain counter, the last applier and its node) live in the first
// line of the workload's shared memory (`HarnessRecord`), so that the mutual-exclusion check costs
// no extra shared line: `cs-lines K` moves K lines per handover, the record included.

import CShims

/// One operation: a code (the workload's: enqueue, get, ...) and up to two 64-bit arguments.
/// 24 bytes: a 64-byte request line holds it, the 64-bit result and a flag word with room to spare.
@frozen
public struct Operation: Equatable, Sendable {
    public var code: UInt64
    public var arg0: UInt64
    public var arg1: UInt64

    @inlinable @inline(__always)
    public init(code: UInt64, arg0: UInt64 = 0, arg1: UInt64 = 0) {
        self.code = code
        self.arg0 = arg0
        self.arg1 = arg1
    }
}

/// The result a structure returns when there is nothing to return (an empty queue's dequeue, a
/// missing key's get): all ones, never a value the workloads store.
public let emptyResult: UInt64 = .max

/// A sequential data structure: correct only when its operations never overlap. Every executor
/// runs `apply` under mutual exclusion (its own thread or a combiner or a server thread).
public protocol SequentialStructure {
    /// Applies `op` and returns its result. Allocates nothing (pools are preallocated).
    func apply(_ op: Operation) -> UInt64
    /// True when `op` changes nothing: not a word of the structure's memory is written (no
    /// statistics, no move-to-front, no lazy clean-up), so a reader-sharing executor may run it
    /// beside other reads (`ReadSharing`). `WorkloadTests` checks it for every workload.
    static func isReadOnly(_ op: Operation) -> Bool
    /// True when a read may run beside an update and still terminate and touch only memory that
    /// stays allocated, its loads atomic (a seqlock's reader, Boehm MSPC 2012): the condition for
    /// pairing with a `.optimistic` executor. False by default.
    static var readsTolerateConcurrentUpdates: Bool { get }
}

extension SequentialStructure {
    @inline(__always)
    public static var readsTolerateConcurrentUpdates: Bool { false }
}

/// The harness's words, at the start of every workload's first shared line: the plain
/// (non-atomic) counter that must equal the operations applied (the updates, for a reader-sharing
/// executor), the previous applier's thread (index + 1) and node, for handover locality, and the
/// update version (reader-sharing executors only): odd while an update runs, twice the updates
/// applied otherwise; a read that sees it odd or changed overlapped an update.
@frozen
public struct HarnessRecord {
    public var counter: UInt64
    public var lastApplier: UInt64
    public var lastNode: UInt64
    /// Written and read only through the shim's atomics (readers load it beside an update).
    public var version: UInt64
    /// Bytes the record takes at the start of the first line; a workload's own words go after.
    public static let bytes = 32
}

/// What the validator checks after a run, besides the plain counter.
public struct WorkloadCheck: Sendable, Equatable {
    /// nil when every check passed, else the first failure, one line.
    public var failure: String?
    public static let ok = WorkloadCheck(failure: nil)
    public var passed: Bool { failure == nil }
}

/// One applied operation as the validator's log keeps it.
public struct AppliedOperation: Equatable, Sendable {
    public var operation: Operation
    public var result: UInt64
}

/// Work the harness runs: a shared structure, the operations each thread applies to it, and the
/// work between operations.
///
/// Conformers are structs of pointers (cheap to copy, no ARC) in this module, with
/// `@inline(__always)` on the per-operation methods, so each (executor, workload) pair compiles
/// into one specialised loop.
public protocol Workload {
    associatedtype Structure: SequentialStructure
    associatedtype ThreadState
    /// The model the validator replays the log on.
    associatedtype Model: SequentialModel

    /// The workload's name (`--workload`).
    static var name: String { get }
    /// The shared structure: executors apply operations to it.
    var structure: Structure { get }
    /// The first shared line, whose first `HarnessRecord.bytes` are the harness's.
    var record: UnsafeMutablePointer<HarnessRecord> { get }

    /// Made once per thread, on the thread, before the start barrier.
    func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState
    /// The thread's next operation.
    func nextOperation(_ state: inout ThreadState) -> Operation
    /// After the operation's result came back, on the thread that asked.
    func completed(_ op: Operation, result: UInt64, _ state: inout ThreadState)
    /// Runs between operations, outside any exclusion (`ncs-ns`).
    func outsideCriticalSection(_ state: inout ThreadState)

    /// A fresh model in the structure's initial state.
    func makeModel() -> Model
    /// After the run (no thread running): the structure's own invariants (sizes, order, no
    /// duplicate), given the operations applied. nil when they hold, else the first failure.
    func invariantFailure(applied: UInt64) -> String?
    /// The structure's contents in the model's canonical order (see `SequentialModel.contents`).
    func contents() -> [UInt64]
    /// The shared memory the structure and the harness record live in: every byte an operation
    /// may write. The read-only test checksums it around a run of reads.
    func sharedMemory() -> [UnsafeRawBufferPointer]
    /// Frees the shared memory after every thread has finished.
    func deallocate()
}

/// What every workload is told when it is made.
public struct WorkloadEnvironment: Sendable {
    /// Client threads of the run: pools are sized from it (a queue of pairs holds at most one
    /// element per thread).
    public let threads: Int
    /// Where the shared structure goes.
    public let memory: LabMemory
    /// The run's seed (initial contents are drawn from it).
    public let seed: UInt64
    public init(threads: Int, memory: LabMemory = LabMemory(), seed: UInt64 = 1) {
        self.threads = max(1, threads)
        self.memory = memory
        self.seed = seed
    }
}

extension Workload {
    @inline(__always)
    public func completed(_ op: Operation, result: UInt64, _ state: inout ThreadState) {}
}

/// The simple sequential model of a structure (Swift collections, no cleverness): replaying the
/// log on it must give every logged result.
public protocol SequentialModel {
    mutating func apply(_ op: Operation) -> UInt64
    /// The contents in a canonical order (queue: front to back; stack: bottom to top; hash table:
    /// key, value pairs by key; list and priority queue: ascending).
    func contents() -> [UInt64]
}

extension Workload {
    /// Every check after a run: the structure's invariants; with the validator's log, the replay
    /// on the sequential model (every result must match) and the final contents against the model's.
    public func verify(applied: UInt64, log: UnsafeBufferPointer<AppliedOperation>?) -> WorkloadCheck {
        if let failure = invariantFailure(applied: applied) { return WorkloadCheck(failure: "\(Self.name): \(failure)") }
        guard let log else { return .ok }
        var model = makeModel()
        for (i, entry) in log.enumerated() {
            let expected = model.apply(entry.operation)
            if expected != entry.result {
                return WorkloadCheck(failure: "\(Self.name): operation \(i) of \(log.count) (code \(entry.operation.code), args \(entry.operation.arg0), \(entry.operation.arg1)) returned \(Self.describe(entry.result)); the sequential model returns \(Self.describe(expected))")
            }
        }
        let have = contents()
        let want = model.contents()
        if have != want {
            return WorkloadCheck(failure: "\(Self.name): the structure holds \(have.count) words (\(have.prefix(6).map(String.init).joined(separator: ",")) ...), the model \(want.count) (\(want.prefix(6).map(String.init).joined(separator: ",")) ...)")
        }
        return .ok
    }

    static func describe(_ result: UInt64) -> String { result == emptyResult ? "empty" : "\(result)" }
}

/// The outside-critical-section wait every workload offers (`ncs-ns`, `ncs-random`): a busy-wait of
/// a fixed number of cycles, or drawn uniformly from [0, 2x] with the thread's xorshift stream.
@frozen
public struct OutsideWork: Sendable {
    public let cycles: UInt64
    public let random: Bool

    public init(nanoseconds: Int, random: Bool) {
        cycles = CycleClock.cycles(nanoseconds: nanoseconds)
        self.random = random
    }

    @inlinable @inline(__always)
    public func run(_ rng: inout UInt64) {
        guard cycles != 0 else { return }
        if random {
            // xorshift64*, then scale to [0, 2 * ncs] without a division.
            var x = rng
            x ^= x >> 12
            x ^= x << 25
            x ^= x >> 27
            rng = x
            let r = x &* 2_685_821_657_736_338_717
            cshims_spin_cycles(r.multipliedFullWidth(by: 2 &* cycles &+ 1).high)
        } else {
            cshims_spin_cycles(cycles)
        }
    }
}
