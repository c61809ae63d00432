// brlock: the big-reader lock, one reader indicator per thread (or per node) on a line of its own.
//
// Source: Concurrency Kit include/ck_brlock.h (ck_brlock_read_lock / ck_brlock_write_lock), after
// Linux's old lib/brlock.c (2.4) and today's percpu-rwsem. Idea: a reader touches only its own
// indicator line (count itself in, check the writer flag, back out if a writer came), so reads
// that never conflict never share a line and scale; a writer takes the writer flag and then
// sweeps every indicator until each has drained, so an update costs one line per indicator.
// `per-node=1` shares one indicator among a node's threads (fewer lines for the writer to sweep,
// a line that bounces only within the node: the per-node counters of c-rw-wp without the cohort).
// Invariants: writer == 1 iff a writer holds or is draining readers; a reader holds the read side
// iff it counted itself into its indicator and then read writer == 0; indicator i counts the
// readers of thread (node) i counted in. Writer preference: a set flag turns new readers away.

import CShims

public struct BRLock: ReaderWriterLock {
    /// This thread's indicator.
    public typealias Context = UnsafeMutablePointer<UInt32>

    public static let descriptor = LockDescriptor(
        name: "brlock", family: .readerWriter, waiting: .spin,
        paper: "Concurrency Kit ck_brlock (big-reader lock: per-reader indicators; Linux 2.4 brlock)",
        supportsTryLock: true,
        options: [
            LockOptionSpec("per-node", default: 0, range: 0...1,
                           help: "1: one reader indicator per NUMA node (shared by its threads) instead of one per thread (ck_brlock: per thread)"),
        ])

    /// The writer flag, alone on its line.
    @usableFromInline let writer: UnsafeMutablePointer<UInt32>
    /// `count` indicators, one per line (`stride` words apart).
    @usableFromInline let indicators: UnsafeMutablePointer<UInt32>
    @usableFromInline let count: Int
    @usableFromInline let perNode: Bool
    @usableFromInline static var stride: Int { LabMemory.alignment / MemoryLayout<UInt32>.stride }
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        perNode = environment.options.int("per-node") == 1
        count = perNode ? environment.nodeCount : environment.maxThreads
        writer = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 1)
        indicators = memory.allocate(bytes: count * LabMemory.alignment)
            .bindMemory(to: UInt32.self, capacity: count * Self.stride)
    }

    public func makeContext(for thread: ThreadSlot) -> UnsafeMutablePointer<UInt32> {
        let i = perNode ? thread.node : thread.index
        precondition(i < count, "brlock: thread \(thread.index) (node \(thread.node)) beyond the \(count) indicators made")
        return indicators + i * Self.stride
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        // Seq-cst exchange, then seq-cst loads of the indicators: the flag is set before any
        // indicator is read (store-load order on two words; ck's ck_pr_fence_atomic_load after its
        // fas). With the reader's seq-cst increment and load, one of the two sees the other.
        while cshims_u32_exchange_seq_cst(writer, 1) != 0 {
            while cshims_u32_load_relaxed(writer) != 0 { cshims_pause() }
        }
        drainReaders()
    }

    /// Waits for every indicator to read 0. Seq-cst (so also acquire): each reader's critical
    /// section comes before ours.
    @inline(__always)
    func drainReaders() {
        for i in 0..<count {
            let indicator = indicators + i * Self.stride
            while cshims_u32_load_seq_cst(indicator) != 0 { cshims_pause() }
        }
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        guard cshims_u32_load_relaxed(writer) == 0, cshims_u32_exchange_seq_cst(writer, 1) == 0 else { return false }
        for i in 0..<count where cshims_u32_load_seq_cst(indicators + i * Self.stride) != 0 {
            cshims_u32_store_release(writer, 0)
            return false
        }
        return true
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        // Release: the critical section's stores are visible before the flag reads clear.
        cshims_u32_store_release(writer, 0)
    }

    @inline(__always)
    public func readLock(_ context: inout Context) {
        // Count in on our own indicator (uncontended per thread; an RMW because per node it is
        // shared) unless the writer flag is set.
        enterReadSide(context, unlessWriter: writer)
    }

    @inline(__always)
    public func readUnlock(_ context: inout Context) {
        // Release: our reads are done before the writer sees the indicator drop.
        _ = cshims_u32_fetch_sub_release(context, 1)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(writer), bytes: LabMemory.alignment)
        memory.deallocate(UnsafeMutableRawPointer(indicators), bytes: count * LabMemory.alignment)
    }
}
