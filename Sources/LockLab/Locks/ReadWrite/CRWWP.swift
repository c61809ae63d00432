// c-rw-wp: the NUMA-aware cohort reader-writer lock with writer preference (C-RW-WP).
//
// Paper: Calciu, Dice, Lev, Luchangco, Marathe, Shavit, "NUMA-Aware Reader-Writer Locks", PPoPP
// 2013, §3 (C-RW-WP, the paper's best of its three preferences).
// Idea: one reader indicator per NUMA node (a counter on a line of its own), so readers bounce a
// line only within their node; writers are serialised by one of the lab's cohort locks (the
// `writers` option names which), so write-heavy phases keep the lock on one node for a batch of
// handovers. A writer announces itself, takes the cohort lock and waits for every node's
// indicator to drain; a reader defers while any writer is present (writer preference) and backs
// out if one arrived while it counted itself in.
// The paper's readers wait while the cohort lock is held; here a count of writers present
// (waiting for the cohort lock or holding it) stands for that check, so readers also yield to
// queued writers and do not slip in between two writers' tenures (the paper's intent: writers
// are not starved and keep their batch).
// Invariants: writersPresent counts the writers between their announcement and their release;
// a writer holds iff it holds the cohort lock and read every indicator 0 after announcing; a
// reader holds iff it counted itself into its node's indicator and then read writersPresent 0.
// Virtual nodes work as real ones: indicators and the cohort lock follow the run's node ids.

import CShims

struct CRWWP<Writers: LockAlgorithm>: ReaderWriterLock {
    struct Context {
        var writers: Writers.Context
        /// This thread's node's reader indicator.
        let indicator: UnsafeMutablePointer<UInt32>
    }

    /// The `writers` choices, in the order the registry lists the variants.
    static var writerChoices: [String] { ["c-bo-mcs", "c-tkt-tkt", "c-mcs-mcs", "hmcs"] }

    static var descriptor: LockDescriptor {
        LockDescriptor(
            name: "c-rw-wp", family: .readerWriter, waiting: .spin,
            paper: "Calciu, Dice, Lev, Luchangco, Marathe, Shavit, PPoPP 2013 (C-RW-WP: per-node reader indicators, cohort lock for writers)",
            supportsTryLock: false,
            options: [LockOptionSpec("writers", choices: writerChoices, default: "c-bo-mcs",
                                     help: "the cohort lock that serialises writers (with its own defaults)")])
    }

    @usableFromInline let writersPresent: UnsafeMutablePointer<UInt32>
    @usableFromInline let indicators: UnsafeMutablePointer<UInt32>
    @usableFromInline let nodeCount: Int
    @usableFromInline let writers: Writers
    @usableFromInline static var stride: Int { LabMemory.alignment / MemoryLayout<UInt32>.stride }
    let memory: LabMemory

    init(_ environment: LockEnvironment) throws {
        let chosen = Self.writerChoices[environment.options.int("writers")]
        precondition(chosen == Writers.descriptor.name, "c-rw-wp: variant \(Writers.descriptor.name) registered as \(chosen)")
        let defaults = Dictionary(uniqueKeysWithValues: Writers.descriptor.options.map { ($0.key, $0.defaultValue) })
        writers = try Writers(LockEnvironment(maxThreads: environment.maxThreads, nodeCount: environment.nodeCount,
                                              memory: environment.memory, options: LockOptions(defaults)))
        memory = environment.memory
        nodeCount = environment.nodeCount
        writersPresent = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 1)
        indicators = memory.allocate(bytes: nodeCount * LabMemory.alignment)
            .bindMemory(to: UInt32.self, capacity: nodeCount * Self.stride)
    }

    func makeContext(for thread: ThreadSlot) -> Context {
        precondition(thread.node < nodeCount, "c-rw-wp: node \(thread.node) beyond the run's \(nodeCount)")
        return Context(writers: writers.makeContext(for: thread), indicator: indicators + thread.node * Self.stride)
    }

    func freeContext(_ context: inout Context) { writers.freeContext(&context.writers) }

    @inline(__always)
    func lock(_ context: inout Context) {
        // Seq-cst announcement, then seq-cst loads of the indicators (after the cohort lock):
        // with the reader's seq-cst increment and load, one of the two sees the other.
        _ = cshims_u32_fetch_add_seq_cst(writersPresent, 1)
        writers.lock(&context.writers)
        for node in 0..<nodeCount {
            // Seq-cst (so also acquire): the node's readers' sections come before ours.
            while cshims_u32_load_seq_cst(indicators + node * Self.stride) != 0 { cshims_pause() }
        }
    }

    @inline(__always)
    func unlock(_ context: inout Context) {
        // The cohort lock's release orders our section before the next writer; the release
        // decrement orders it before the readers that see the count reach 0.
        writers.unlock(&context.writers)
        _ = cshims_u32_fetch_sub_release(writersPresent, 1)
    }

    @inline(__always)
    func readLock(_ context: inout Context) {
        // Count in on the node's indicator unless a writer is present (the last writer's release
        // decrement orders its section before our reads).
        enterReadSide(context.indicator, unlessWriter: writersPresent)
    }

    @inline(__always)
    func readUnlock(_ context: inout Context) {
        // Release: our reads come before a writer sees the indicator drop.
        _ = cshims_u32_fetch_sub_release(context.indicator, 1)
    }

    func deallocate() {
        writers.deallocate()
        memory.deallocate(UnsafeMutableRawPointer(writersPresent), bytes: LabMemory.alignment)
        memory.deallocate(UnsafeMutableRawPointer(indicators), bytes: nodeCount * LabMemory.alignment)
    }
}
