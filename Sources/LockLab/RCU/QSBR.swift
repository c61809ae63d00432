// rcu-qsbr: quiescent-state-based reclamation (Hart, McKenney, Demke Brown, Walpole, "Performance
// of memory reclamation for lockless synchronization", JPDC 2007), in liburcu's 64-bit form
// (src/urcu-qsbr.c and include/urcu/static/urcu-qsbr.h, liburcu 0.13).
//
// Idea: the read side is empty. Each thread says, between operations, that it holds no reference
// (a quiescent state: it copies the global grace-period counter into its own line); a grace period
// bumps the counter and ends when every online thread has copied the new value or gone offline.
// The quiescent report costs one load and a compare while no grace period is waiting.
// Invariants: the counter starts at 1 and grows by 2, so an online reader's line is odd and never
// 0 (offline); a grace period that began at counter value G ends only when no online reader's line
// holds a value below G: a reader whose line is older than G may still hold a node unlinked before
// G was published, and one whose line is G has passed a quiescent state since. Grace periods run one
// at a time (the grace-period mutex) and a caller is offline while it waits, so two waiting
// writers never wait for each other.
// Orders (C11; liburcu's cmm_smp_mb is a seq_cst fence): a quiescent report is fence, store of the
// line, fence. The first fence orders the reader's earlier loads of nodes before the store a writer
// reads; the writer's fence after that load then orders its frees after them (fence-fence
// synchronisation). The second orders the store before the reader's next loads, against the
// writer's counter store followed by a fence and its loads of the lines: the store-buffering pair,
// which only seq_cst fences on both sides forbid (either the writer sees the new line or the
// reader sees the new counter and, through it, the unlinking that came before).
// Model: Models/qsbr.pml (spin, `make model-check`): no use after free and the writer's progress
// for this grace period, with deliberately broken variants spin must catch.

import CShims

public struct QSBR: RCUFlavor {
    public struct Reader {
        @usableFromInline let line: UnsafeMutablePointer<UInt64>
        /// The thread's own copy of its line (only it stores the line).
        @usableFromInline var seen: UInt64
    }

    public static let name = "rcu-qsbr"
    public static let paper = "Hart et al., JPDC 2007 (QSBR); liburcu 0.13 src/urcu-qsbr.c, 64-bit counter"

    /// The grace-period counter (`state.word`; odd: URCU_QSBR_GP_ONLINE 1, step URCU_QSBR_GP_CTR
    /// 2) and one line per registered thread: 0 offline, else the counter value of its last report.
    @usableFromInline let state: GracePeriodState

    public init(threads: Int, memory: LabMemory, options: LockOptions) throws {
        state = GracePeriodState(threads: threads, memory: memory, initial: 1)
    }

    public func register(thread: Int) -> Reader {
        var r = Reader(line: state.lines.word(thread), seen: 0)
        online(&r)
        return r
    }

    public func unregister(_ reader: inout Reader) { offline(&reader) }

    /// rcu_thread_online: the line takes the counter, then a fence before any read.
    @inline(__always) @usableFromInline
    func online(_ r: inout Reader) {
        let g = cshims_u64_load_relaxed(state.word)
        cshims_u64_store_relaxed(r.line, g)
        r.seen = g
        cshims_fence_seq_cst()
    }

    /// rcu_thread_offline: a fence after the last read, then 0.
    @inline(__always) @usableFromInline
    func offline(_ r: inout Reader) {
        cshims_fence_seq_cst()
        cshims_u64_store_relaxed(r.line, 0)
        r.seen = 0
        cshims_fence_seq_cst()
    }

    @inline(__always)
    public func readLock(_ reader: inout Reader) {}

    @inline(__always)
    public func readUnlock(_ reader: inout Reader) {}

    /// rcu_quiescent_state: nothing to report unless the counter moved.
    @inline(__always)
    public func quiescentState(_ reader: inout Reader) {
        let g = cshims_u64_load_relaxed(state.word)
        if g == reader.seen { return }
        cshims_fence_seq_cst()
        cshims_u64_store_relaxed(reader.line, g)
        reader.seen = g
        cshims_fence_seq_cst()
    }

    /// synchronize_rcu (64-bit): offline, bump the counter, wait until no online line is older.
    public func synchronize(_ reader: inout Reader) {
        let wasOnline = reader.seen != 0
        if wasOnline { offline(&reader) } else { cshims_fence_seq_cst() }
        state.gpMutex.lock()
        // Only grace-period callers store the counter, and they hold the mutex.
        let g = cshims_u64_load_relaxed(state.word) &+ 2
        cshims_u64_store_relaxed(state.word, g)
        // The counter store before the loads of the lines (see the header: store buffering).
        cshims_fence_seq_cst()
        state.waitForReaders(past: g)
        // The lines' loads before the caller's frees.
        cshims_fence_seq_cst()
        state.gpMutex.unlock()
        if wasOnline { online(&reader) } else { cshims_fence_seq_cst() }
    }

    public func readersHoldingGracePeriod() -> Int { state.readersOlderThanCounter() }

    public func deallocate() { state.deallocate() }
}
