// RCU flavours: what a read-copy-update domain offers the executor and the structures built for it
// (Desnoyers, McKenney, Stern, Dagenais, Walpole, "User-Level Implementations of Read-Copy Update",
// IEEE TPDS 2012; McKenney & Slingwine, "Read-Copy Update", PDCS 1998).
//
// A reader brackets its traversal with `readLock`/`readUnlock` (empty for QSBR, whose threads
// instead report quiescent states between operations) and never waits; a writer publishes a new
// version with one release store, retires the old one, and frees it only after a grace period:
// `synchronize` returns once every read-side section that began before the call has ended. That
// is the grace-period invariant every flavour keeps, each with its own cost model: QSBR makes the
// read side free and the writer wait for every online thread's next quiescent state; EBR makes a
// reader announce the global epoch; memb makes a reader store a snapshot of a grace-period
// counter, and the writer pay for the fence readers skip (membarrier(2)).
//
// Flavours are structs of pointers (no ARC) with `@inline(__always)` on the read side, like the
// locks; a flavour's per-thread state is its `Reader` (a pointer to the thread's own line), made
// on the thread after it is pinned. The executor (RCUExecutor.swift) owns the calls: the
// structures (Workloads/RCU*.swift) only dereference and publish pointers, and retire nodes
// through the domain's reclaimer (Reclamation.swift).

import CShims

/// One RCU implementation: the read side, quiescent states and grace periods.
public protocol RCUFlavor {
    /// A thread's registration: a pointer to its own line (the reader's counter or epoch).
    associatedtype Reader

    /// The name in the catalog (`rcu-qsbr`, `urcu-memb`).
    static var name: String { get }
    /// The paper or source file the implementation follows (`locklab list`).
    static var paper: String { get }
    /// Options of the flavour itself (the executor adds the writer lock's and reclamation's).
    static var options: [LockOptionSpec] { get }

    /// Allocates the flavour for at most `threads` registered threads. Throws `LockError` for
    /// options it cannot honour.
    init(threads: Int, memory: LabMemory, options: LockOptions) throws

    /// Registers the calling thread (index `thread` in 0..<threads) and brings it online. On the
    /// thread, before its first read-side section.
    func register(thread: Int) -> Reader
    /// Takes the calling thread offline for good (it reads no more). On the thread.
    func unregister(_ reader: inout Reader)

    /// Enters a read-side section: a node loaded through `RCUPointer.dereference` until
    /// `readUnlock` is not freed.
    func readLock(_ reader: inout Reader)
    /// Leaves it.
    func readUnlock(_ reader: inout Reader)
    /// Between operations, outside any read-side section: a QSBR thread reports a quiescent state
    /// here (nothing for the other flavours).
    func quiescentState(_ reader: inout Reader)
    /// Waits for a grace period: returns once every read-side section that had begun when it
    /// was called has ended. Outside any read-side section; a QSBR caller is offline while it waits.
    func synchronize(_ reader: inout Reader)

    /// The registered threads' lines, for a stall report: how many threads a grace period would
    /// wait for now (online and not past the current grace period). Read from any thread.
    func readersHoldingGracePeriod() -> Int

    /// A fact for the manifest and `list` (the fence the writer uses, say); nil for none.
    var note: String? { get }

    /// Frees the flavour's memory once every thread has left.
    func deallocate()
}

extension RCUFlavor {
    public static var options: [LockOptionSpec] { [] }
    @inline(__always)
    public func quiescentState(_ reader: inout Reader) {}
    public func readersHoldingGracePeriod() -> Int { 0 }
    public var note: String? { nil }
}

/// Published pointers: `rcu_dereference` and `rcu_assign_pointer` as C11 says them.
public enum RCUPointer {
    /// rcu_dereference: an acquire load (C11's memory_order_consume, which every compiler
    /// promotes to acquire; liburcu's `CMM_LOAD_SHARED` plus a read dependency barrier): the
    /// node's fields, stored before it was published, are seen.
    @inline(__always)
    public static func dereference(_ slot: UnsafeMutablePointer<UInt64>) -> UInt64 {
        cshims_u64_load_acquire(slot)
    }

    /// rcu_assign_pointer: a release store: every store that initialised the node comes before it.
    @inline(__always)
    public static func assign(_ slot: UnsafeMutablePointer<UInt64>, _ node: UInt64) {
        cshims_u64_store_release(slot, node)
    }
}

/// A grace-period waiter's patience: spin `spins` pauses, then yield between polls (a reader
/// that holds the grace period may be off its CPU: liburcu's wait_for_readers spins
/// RCU_QS_ACTIVE_ATTEMPTS (100) times, then sleeps on a futex).
@usableFromInline
struct GracePeriodWait {
    @usableFromInline var attempts: UInt32 = 0
    @usableFromInline static let spins: UInt32 = 100

    @inline(__always) @usableFromInline
    mutating func pause() {
        attempts &+= 1
        if attempts < Self.spins { cshims_pause() } else { cshims_sched_yield() }
    }
}

/// The lab's per-thread lines: `threads` lines of `LabMemory.alignment` bytes, each holding one
/// word a thread stores and others load.
@usableFromInline
struct ReaderLines {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let count: Int
    @usableFromInline static let stride = LabMemory.alignment

    init(count: Int, memory: LabMemory) {
        self.count = count
        base = memory.allocate(bytes: count * Self.stride)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: count * Self.stride)
    }

    @inline(__always) @usableFromInline
    func word(_ i: Int) -> UnsafeMutablePointer<UInt64> {
        (base + i &* Self.stride).assumingMemoryBound(to: UInt64.self)
    }

    func deallocate(_ memory: LabMemory) { memory.deallocate(base, bytes: count * Self.stride) }
}

/// A mutex for grace-period callers (liburcu's `rcu_gp_lock`): one grace period is driven at a
/// time. A test-and-test-and-set word that yields, taken only by writers that are offline, so a
/// waiter never holds up a grace period.
@usableFromInline
struct GracePeriodMutex {
    @usableFromInline let word: UnsafeMutablePointer<UInt64>

    @inline(__always) @usableFromInline
    func lock() {
        var wait = GracePeriodWait()
        while true {
            if cshims_u64_load_relaxed(word) == 0, cshims_u64_cas_value_acquire(word, 0, 1) { return }
            wait.pause()
        }
    }

    @inline(__always) @usableFromInline
    func unlock() { cshims_u64_store_release(word, 0) }
}

/// What the lab's flavours share: a grace-period word (counter or epoch) on its own line, the
/// grace-period mutex on the next, and one line per registered thread.
@usableFromInline
struct GracePeriodState {
    /// The grace-period counter (QSBR, memb) or epoch (EBR).
    @usableFromInline let word: UnsafeMutablePointer<UInt64>
    @usableFromInline let gpMutex: GracePeriodMutex
    @usableFromInline let lines: ReaderLines
    let shared: UnsafeMutableRawPointer
    let memory: LabMemory

    /// The word starts at `initial`; every line at 0.
    init(threads: Int, memory: LabMemory, initial: UInt64) {
        self.memory = memory
        shared = memory.allocate(bytes: 2 * LabMemory.alignment)
        shared.initializeMemory(as: UInt8.self, repeating: 0, count: 2 * LabMemory.alignment)
        word = shared.assumingMemoryBound(to: UInt64.self)
        word.pointee = initial
        gpMutex = GracePeriodMutex(word: (shared + LabMemory.alignment).assumingMemoryBound(to: UInt64.self))
        lines = ReaderLines(count: max(1, threads), memory: memory)
    }

    /// Waits until every line is 0 (offline, outside a section) or at least `g` (past the grace
    /// period's start): QSBR's and memb's wait_for_readers. Acquire loads: a reader's section
    /// comes before the line the wait sees.
    @usableFromInline
    func waitForReaders(past g: UInt64) {
        for i in 0..<lines.count {
            let line = lines.word(i)
            var wait = GracePeriodWait()
            while true {
                let v = cshims_u64_load_acquire(line)
                if v == 0 || v >= g { break }
                wait.pause()
            }
        }
    }

    /// Lines that would hold up a grace period now (online and older than the counter).
    func readersOlderThanCounter() -> Int {
        let g = cshims_u64_load_relaxed(word)
        return (0..<lines.count).filter { let v = cshims_u64_load_relaxed(lines.word($0)); return v != 0 && v < g }.count
    }

    func deallocate() {
        lines.deallocate(memory)
        memory.deallocate(shared, bytes: 2 * LabMemory.alignment)
    }
}
