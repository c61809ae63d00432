// rcu-memb: the memory-barrier flavour with the kernel's asymmetric fence, after liburcu's urcu-memb
// (Desnoyers et al., IEEE TPDS 2012, §3.2 "General-purpose RCU" with sys_membarrier; liburcu 0.13
// include/urcu/static/urcu-memb.h and src/urcu.c), with a 64-bit grace-period counter in place of
// liburcu's phase bit (as its QSBR flavour has on 64-bit machines).
//
// Idea: a reader's outermost `readLock` copies the grace-period counter into its own line and its
// last `readUnlock` clears it (nesting is counted in the thread's own state); a grace period bumps
// the counter and waits until no line holds an older value. Readers pay no fence: the writer
// makes every running thread of the process execute one (membarrier(2), MEMBARRIER_CMD_PRIVATE_
// EXPEDITED) where readers would need one. Where the kernel refuses membarrier (an old kernel, a
// sandbox) or the option is off, readers take the seq_cst fence themselves (liburcu's urcu-mb
// shape): `note` says which, and the manifest records it through `list`'s notes.
// Invariants: the counter starts at 1 and grows by 2 (a line in a section is odd, 0 outside); a
// grace period that set the counter to G ends when every line is 0 or at least G.
// Orders (C11): reader entry is a relaxed store of the line, then a compiler barrier (membarrier)
// or a seq_cst fence; exit is a compiler barrier or fence, then a release store of 0. The
// writer's membarrier (or fence) before loading the lines pairs with the reader's barrier after
// its store (store buffering, as in QSBR.swift: either the writer sees the line or the reader
// sees the unlinking); its membarrier after the loads pairs with the release store of 0 (the
// reader's loads before the writer's frees).

import CShims

public struct MembRCU: RCUFlavor {
    public struct Reader {
        @usableFromInline let line: UnsafeMutablePointer<UInt64>
        /// Read-side nesting depth (thread-private).
        @usableFromInline var depth: UInt32
    }

    public static let name = "rcu-memb"
    public static let paper = "Desnoyers et al., IEEE TPDS 2012 (urcu-memb, sys_membarrier); liburcu 0.13 src/urcu.c"
    public static var options: [LockOptionSpec] {
        [LockOptionSpec("membarrier", default: 1, range: 0...1,
                        help: "1: the writer issues membarrier(2) and readers skip the fence (when the kernel offers it); 0: readers fence")]
    }

    /// Whether this process registered for private expedited membarrier (once, at first use).
    public static let membarrierAvailable: Bool = cshims_membarrier_register_private_expedited() == 0

    @usableFromInline let state: GracePeriodState
    /// Readers skip their fences and the writer calls membarrier.
    @usableFromInline let asymmetric: Bool

    public init(threads: Int, memory: LabMemory, options: LockOptions) throws {
        asymmetric = options.int("membarrier") == 1 && Self.membarrierAvailable
        state = GracePeriodState(threads: threads, memory: memory, initial: 1)
    }

    public var note: String? {
        asymmetric ? "readers unfenced, writer membarrier(PRIVATE_EXPEDITED)"
                   : (Self.membarrierAvailable ? "readers fence (membarrier=0)" : "readers fence (the kernel refused membarrier)")
    }

    public func register(thread: Int) -> Reader { Reader(line: state.lines.word(thread), depth: 0) }

    public func unregister(_ reader: inout Reader) { cshims_u64_store_release(reader.line, 0) }

    /// The reader's side of the asymmetric fence.
    @inline(__always) @usableFromInline
    func readerBarrier() {
        if asymmetric { cshims_compiler_barrier() } else { cshims_fence_seq_cst() }
    }

    /// The writer's side: every running thread of the process fences.
    @inline(__always) @usableFromInline
    func writerBarrier() {
        if asymmetric, cshims_membarrier_private_expedited() == 0 { return }
        // Not registered (or a failed call): the readers fence themselves, a local fence suffices.
        cshims_fence_seq_cst()
    }

    @inline(__always)
    public func readLock(_ reader: inout Reader) {
        if reader.depth == 0 {
            cshims_u64_store_relaxed(reader.line, cshims_u64_load_relaxed(state.word))
            readerBarrier()
        }
        reader.depth &+= 1
    }

    @inline(__always)
    public func readUnlock(_ reader: inout Reader) {
        reader.depth &-= 1
        if reader.depth == 0 {
            readerBarrier()
            cshims_u64_store_release(reader.line, 0)
        }
    }

    public func synchronize(_ reader: inout Reader) {
        // The caller's unlinking before the loads of the lines (smp_mb_master).
        writerBarrier()
        state.gpMutex.lock()
        let g = cshims_u64_load_relaxed(state.word) &+ 2
        cshims_u64_store_relaxed(state.word, g)
        cshims_fence_seq_cst()
        state.waitForReaders(past: g)
        state.gpMutex.unlock()
        // The readers' loads before the caller's frees.
        writerBarrier()
    }

    public func readersHoldingGracePeriod() -> Int { state.readersOlderThanCounter() }

    public func deallocate() { state.deallocate() }
}
