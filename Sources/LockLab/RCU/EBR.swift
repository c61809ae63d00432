// rcu-ebr: epoch-based reclamation (Fraser, "Practical lock-freedom", PhD thesis, Cambridge 2004,
// §5.2.3; the form crossbeam-epoch and Hart et al., JPDC 2007, measure).
//
// Idea: a reader announces the global epoch on entry (its line: epoch << 1 | 1) and clears the line
// on exit; the epoch advances only when every active reader has announced the current one, and a
// node retired before a grace period's start is free once the epoch has advanced twice: the
// reclamation lags two epochs.
// Invariants: the epoch only grows, stored by the one grace-period caller (the mutex) once every
// active line was seen to hold its current value; a reader active in epoch e blocks the advance from e + 1 to e + 2, so when the epoch
// reaches start + 2 (start read at the call), every section active at the call has ended (one that
// announced an older epoch blocked the first advance until it ended).
// Orders (C11): entry is a relaxed store of the line, then a seq_cst fence before the first
// dereference; the writer's unlinking store and its seq_cst fence before it loads the lines form
// the store-buffering pair with it, so either the writer sees the announcement or the reader
// finds the node unlinked. Exit is a release store of 0, read by the writer before a seq_cst
// fence: the reader's loads come before the writer's frees. A reader that loaded a stale epoch
// just announces an older one, which only holds the next advance back.

import CShims

public struct EBR: RCUFlavor {
    public struct Reader {
        @usableFromInline let line: UnsafeMutablePointer<UInt64>
    }

    public static let name = "rcu-ebr"
    public static let paper = "Fraser, Practical lock-freedom, 2004 (epoch-based reclamation, two-epoch lag)"

    /// The global epoch, on its own line.
    @usableFromInline let state: GracePeriodState

    public init(threads: Int, memory: LabMemory, options: LockOptions) throws {
        state = GracePeriodState(threads: threads, memory: memory, initial: 1)
    }

    public func register(thread: Int) -> Reader { Reader(line: state.lines.word(thread)) }

    public func unregister(_ reader: inout Reader) { cshims_u64_store_release(reader.line, 0) }

    /// Announces the epoch; the fence orders the announcement before the section's loads.
    @inline(__always)
    public func readLock(_ reader: inout Reader) {
        cshims_u64_store_relaxed(reader.line, cshims_u64_load_relaxed(state.word) << 1 | 1)
        cshims_fence_seq_cst()
    }

    /// Release: the section's loads come before the line is seen clear.
    @inline(__always)
    public func readUnlock(_ reader: inout Reader) { cshims_u64_store_release(reader.line, 0) }

    /// Advances the epoch twice from its value now; a line active in an older epoch is waited for.
    public func synchronize(_ reader: inout Reader) {
        // The caller's unlinking stores before the loads of the lines.
        cshims_fence_seq_cst()
        state.gpMutex.lock()
        let target = cshims_u64_load_relaxed(state.word) &+ 2
        var e = cshims_u64_load_relaxed(state.word)
        while e < target {
            for i in 0..<state.lines.count {
                let line = state.lines.word(i)
                var wait = GracePeriodWait()
                while true {
                    let v = cshims_u64_load_acquire(line)
                    if v & 1 == 0 || v >> 1 == e { break }
                    wait.pause()
                }
            }
            // Only grace-period callers advance the epoch, and they hold the mutex.
            cshims_u64_store_relaxed(state.word, e &+ 1)
            cshims_fence_seq_cst()
            e &+= 1
        }
        state.gpMutex.unlock()
        // The lines' loads before the caller's frees.
        cshims_fence_seq_cst()
    }

    public func readersHoldingGracePeriod() -> Int {
        let e = cshims_u64_load_relaxed(state.word)
        return (0..<state.lines.count).filter { let v = cshims_u64_load_relaxed(state.lines.word($0)); return v & 1 != 0 && v >> 1 != e }.count
    }

    public func deallocate() { state.deallocate() }
}
