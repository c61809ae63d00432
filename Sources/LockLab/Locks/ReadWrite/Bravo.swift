// bravo: BRAVO, biased reader-writer locking, as a wrapper over another reader-writer lock of the
// lab (`bravo:inner=pthread-rwlock`, the paper's BRAVO-pthread, is the default).
//
// Paper: Dice & Kogan, "BRAVO: Biased Locking for Reader-Writer Locks", USENIX ATC 2019, Listing 1.
// Idea: while the lock is reader-biased (`rbias`), a reader publishes itself by CASing the lock's
// identity into a slot of a visible-readers table (hashed by thread and lock) and never touches
// the inner lock: readers write only their own slot, so reads scale. A writer takes the inner
// lock's write side, clears the bias, and waits until no slot holds this lock (revocation); then
// bias stays off for `inhibit-multiplier` (the paper's N = 9) times what the revocation took,
// which bounds what revocations cost writers. A reader that finds no bias, or a slot taken, uses
// the inner lock's read side, and re-enables the bias there once the inhibition has expired.
// Paper defaults: 4096 table slots, N = 9. Departure from the paper: the table belongs to the
// lock (placed with the lock's memory), not to the process; a run has one lock, so a table
// shared by every lock of the process would hold the same entries.
// Invariants: a slot holds this lock's identity iff a reader between its CAS and its release
// published itself there; a fast-path reader holds the read side iff it published itself and then
// read rbias == 1; rbias is set only under the inner read side and cleared only under its write
// side, so a writer that cleared it and saw every slot free excludes every fast-path reader.

import CShims

struct Bravo<Inner: ReaderWriterLock>: ReaderWriterLock {
    struct Context {
        var inner: Inner.Context
        /// This thread's slot for this lock.
        let slot: UnsafeMutablePointer<UInt64>
        /// The read side held was taken on the fast path (so is released through the slot).
        var fast: Bool
    }

    /// The `inner` choices, in the order the registry lists the variants.
    static var innerChoices: [String] { ["pthread-rwlock", "pthread-rwlock-wp", "rwlock", "pf-ticket", "qrwlock"] }

    static var descriptor: LockDescriptor {
        LockDescriptor(
            name: "bravo", family: .readerWriter, waiting: Inner.descriptor.waiting,
            paper: "Dice & Kogan, USENIX ATC 2019 (BRAVO: reader bias and a visible-readers table over any rwlock)",
            supportsTryLock: Inner.descriptor.supportsTryLock, maxThreads: Inner.descriptor.maxThreads,
            options: [
                LockOptionSpec("inner", choices: innerChoices, default: "pthread-rwlock",
                               help: "the reader-writer lock BRAVO wraps (with its own defaults)"),
                LockOptionSpec("table-slots", default: 4096, range: 1...(1 << 20), powerOfTwo: true,
                               help: "visible-readers table slots, a power of two (paper: 4096)"),
                LockOptionSpec("inhibit-multiplier", default: 9, range: 0...1_000_000,
                               help: "bias stays off for this many times a revocation's duration (paper: N = 9)"),
            ])
    }

    @usableFromInline let inner: Inner
    /// rbias (0 or 1) at [0]; the cycle count until which bias stays off at [1]: one line.
    @usableFromInline let bias: UnsafeMutablePointer<UInt64>
    @usableFromInline let table: UnsafeMutablePointer<UInt64>
    @usableFromInline let slots: Int
    @usableFromInline let multiplier: UInt64
    let memory: LabMemory

    init(_ environment: LockEnvironment) throws {
        let chosen = Self.innerChoices[environment.options.int("inner")]
        precondition(chosen == Inner.descriptor.name, "bravo: variant \(Inner.descriptor.name) registered as \(chosen)")
        slots = environment.options.int("table-slots")
        precondition(slots & (slots - 1) == 0, "bravo: table-slots \(slots) passed the parser's power-of-two check")
        multiplier = UInt64(environment.options.int("inhibit-multiplier"))
        let defaults = Dictionary(uniqueKeysWithValues: Inner.descriptor.options.map { ($0.key, $0.defaultValue) })
        inner = try Inner(LockEnvironment(maxThreads: environment.maxThreads, nodeCount: environment.nodeCount,
                                          memory: environment.memory, options: LockOptions(defaults)))
        memory = environment.memory
        bias = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt64.self, capacity: 2)
        table = memory.allocate(bytes: slots * MemoryLayout<UInt64>.stride).bindMemory(to: UInt64.self, capacity: slots)
    }

    /// This lock's identity in the table: its bias word's address (never 0).
    @usableFromInline var identity: UInt64 { UInt64(UInt(bitPattern: bias)) }

    func makeContext(for thread: ThreadSlot) -> Context {
        // The paper hashes the thread's identity with the lock's address; a Murmur3 finaliser of
        // both mixes them into a slot.
        var h = identity ^ (UInt64(thread.index) &* 0x9E37_79B9_7F4A_7C15)
        h ^= h >> 33; h &*= 0xFF51_AFD7_ED55_8CCD; h ^= h >> 33; h &*= 0xC4CE_B9FE_1A85_EC53; h ^= h >> 33
        return Context(inner: inner.makeContext(for: thread), slot: table + Int(h & UInt64(slots - 1)), fast: false)
    }

    func freeContext(_ context: inout Context) { inner.freeContext(&context.inner) }

    @inline(__always)
    func readLock(_ context: inout Context) {
        if cshims_u64_load_relaxed(bias) != 0 {
            var free: UInt64 = 0
            // Seq-cst CAS, then seq-cst load of rbias: published before the bias is read again;
            // with the writer's seq-cst clear and slot loads, one of the two sees the other.
            if cshims_u64_cas_seq_cst(context.slot, &free, identity) {
                // Seq-cst (so also acquire): bias was last set under the inner read side, after
                // the last writer's inner unlock, so that writer's section comes before our reads.
                if cshims_u64_load_seq_cst(bias) != 0 {
                    context.fast = true
                    return
                }
                // Raced with a revocation: withdraw and take the slow path.
                cshims_u64_store_release(context.slot, 0)
            }
        }
        inner.readLock(&context.inner)
        context.fast = false
        // Re-enable bias once the inhibition has expired (under the read side: no writer in).
        // Release: a fast-path reader that sees it also sees what the last writer wrote (its
        // inner unlock came before our inner read lock).
        if cshims_u64_load_relaxed(bias) == 0 && cshims_cycles() >= cshims_u64_load_relaxed(bias + 1) {
            cshims_u64_store_release(bias, 1)
        }
    }

    @inline(__always)
    func readUnlock(_ context: inout Context) {
        if context.fast {
            // Release: our reads come before a revoking writer sees the slot free.
            cshims_u64_store_release(context.slot, 0)
        } else {
            inner.readUnlock(&context.inner)
        }
    }

    @inline(__always)
    func lock(_ context: inout Context) {
        inner.lock(&context.inner)
        if cshims_u64_load_relaxed(bias) != 0 { revoke() }
    }

    /// Clears the bias, waits for the fast-path readers of this lock to leave, inhibits the bias.
    @inline(never) @usableFromInline
    func revoke() {
        cshims_u64_store_seq_cst(bias, 0)
        let start = cshims_cycles()
        let me = identity
        for i in 0..<slots {
            // Seq-cst (so also acquire): the reader's section comes before ours.
            while cshims_u64_load_seq_cst(table + i) == me { cshims_pause() }
        }
        let now = cshims_cycles()
        // Relaxed: read under the inner lock by the readers that may re-enable bias.
        cshims_u64_store_relaxed(bias + 1, now &+ (now &- start) &* multiplier)
    }

    @inline(__always)
    func tryLock(_ context: inout Context) -> Bool {
        guard inner.tryLock(&context.inner) else { return false }
        if cshims_u64_load_relaxed(bias) != 0 { revoke() }
        return true
    }

    @inline(__always)
    func unlock(_ context: inout Context) { inner.unlock(&context.inner) }

    func deallocate() {
        inner.deallocate()
        memory.deallocate(UnsafeMutableRawPointer(bias), bytes: LabMemory.alignment)
        memory.deallocate(UnsafeMutableRawPointer(table), bytes: slots * MemoryLayout<UInt64>.stride)
    }
}
