// flat-combining: a publication list; whoever takes the lock combines.
//
// Paper: D. Hendler, I. Incze, N. Shavit, M. Tzafrir, "Flat Combining and the
// Synchronization-Parallelism Tradeoff", SPAA 2010. The shape (a list of records, CAS push at
// the head, `rounds` scans, age-based clean-up) and the constants follow the Synch framework's
// fc.c (nkallima/sim-universal-construction, libconcurrent/concurrent/fc.c). That fc.c is not
// the flat combining the CC-Synch paper (PPoPP 2012) measured against: it came with Synch
// v3.1.0 (commit 1be229f, 2022-01-14), and Synch's README says it "is written from the scratch
// and it has no relation with the original code of flat-combining", the authors' C++ code
// (github mit-carbon/Flat-Combining, 2010, data_structures/FC*.h).
// Idea: each thread owns a publication record; it writes its operation there and raises
// `pending`. If the lock is free it takes it and becomes the combiner: it applies its own
// operation, then scans the publication list `rounds` times applying every pending operation;
// otherwise it waits until its record is served, the lock is released, or its record was dropped
// from the list.
// Invariants:
//  - only the lock holder applies operations, clears `pending`, writes `age`, unlinks records and
//    clears `active`; a record's owner writes its operation and sets `pending` only while its
//    previous operation is complete (pending == 0);
//  - records are added only at the head (CAS), unlinked only behind the head and only by the lock
//    holder, so a push and an unlink never touch the same pointer;
//  - a record is in the list iff `active`; the combiner puts its own record in before scanning;
//  - the combiner applies its own pending operation first, through its own target, before any
//    other record (fc.c and the authors' code just scan from the head, where the own record is
//    only when it was just pushed). Any order of the pending operations is a valid one; this
//    one makes the harness's latency sample right: `TimedTarget` stamps the first application
//    through the thread's own target as the start of its operation (Runner.swift), and a
//    combiner that served others first would stamp too early. So a thread that takes the lock
//    and finds its record served already releases it without combining (fc.c combines anyway);
//  - `result` is written before `pending` is cleared with release; the owner reads it after an
//    acquire load of `pending == 0`.
// Parameters (defaults from Synch's fc.c, its #defines):
//  - `rounds`, scans per combining pass: 3, FC_COMBINING_ROUNDS. The authors' code has no one
//    value: FCStack.h scans 3 times; FCQueue.h and FCPairingHeap.h up to n (threads) times,
//    stopping after a scan that served fewer than ceil(n / 1.7) (`_NUM_REP`, `_REP_THRESHOLD`);
//    FCSkipList.h up to min(2, n);
//  - `cleanup-every`, passes between clean-ups: 100, FC_CLEANUP_FREQUENCY;
//  - `cleanup-age`, the passes a record may go unserved before a clean-up drops it: 100,
//    FC_CLEANUP_OLD_THRESHOLD.
//  The clean-up is the paper's; the authors' data_structures/FC*.h never unlink a record. fc.c as published
//  (HEAD, 2024) sets its pass count to 1 on every pass (`lock->count = 1`), so its clean-up never
//  runs (1 % 100 != 0) and its ages never grow: here the pass count counts passes, as the two
//  constants intend.
// Waiters spin, and yield after 1024 polls only when the run's threads share CPUs
// (oversubscribed or unpinned; Delegation.swift).

import CShims

/// A publication record, alone on its 128-byte block.
@usableFromInline
struct FCRecord {
    @usableFromInline var operation: Operation
    @usableFromInline var result: UInt64
    /// 1 from the owner's publication until the combiner has applied it.
    @usableFromInline var pending: UInt32
    /// 1 while the record is in the publication list.
    @usableFromInline var active: UInt32
    /// The combining pass that last served it (lock holder only).
    @usableFromInline var age: UInt64
    @usableFromInline var next: UnsafeMutableRawPointer?
}

public struct FlatCombiningExecutor: Executor {
    public struct Context {
        @usableFromInline let record: UnsafeMutableRawPointer
        @usableFromInline let thread: Int
    }

    public static let descriptor = LockDescriptor(
        name: "flat-combining", family: .delegation, waiting: .spin,
        paper: "Hendler, Incze, Shavit & Tzafrir, SPAA 2010",
        supportsTryLock: false,
        options: [
            LockOptionSpec("rounds", default: 3, range: 1...1_000, help: "scans of the list per combining pass (fc.c: 3)"),
            LockOptionSpec("cleanup-every", default: 100, range: 1...1_000_000, help: "combining passes between clean-ups (fc.c: 100)"),
            LockOptionSpec("cleanup-age", default: 100, range: 1...1_000_000_000, help: "passes unserved before a record is dropped (fc.c: 100)"),
        ])

    /// Block 0: the lock word; block 1: the list head; block 2: the pass count (lock holder only).
    @usableFromInline let shared: UnsafeMutableRawPointer
    @usableFromInline let records: UnsafeMutableRawPointer
    @usableFromInline let rounds: Int
    @usableFromInline let cleanupEvery: UInt64
    @usableFromInline let cleanupAge: UInt64
    @usableFromInline let tally: CombiningTally
    /// Waiters yield after a while (the run's threads share CPUs; Delegation.swift).
    @usableFromInline let yields: Bool
    let clients: Int
    let memory: LabMemory
    @usableFromInline static let stride = LabMemory.paddedStride(of: FCRecord.self)

    @usableFromInline var lockWord: UnsafeMutablePointer<UInt32> { shared.assumingMemoryBound(to: UInt32.self) }
    @usableFromInline var head: UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (shared + 128).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }
    @usableFromInline var passCount: UnsafeMutablePointer<UInt64> { (shared + 256).assumingMemoryBound(to: UInt64.self) }

    public init(_ environment: ExecutorEnvironment) {
        memory = environment.memory
        clients = environment.clientThreads
        rounds = environment.options.int("rounds")
        yields = environment.threadsShareCPUs
        cleanupEvery = UInt64(environment.options.int("cleanup-every"))
        cleanupAge = UInt64(environment.options.int("cleanup-age"))
        shared = memory.allocate(bytes: 3 * 128)
        records = memory.allocate(bytes: clients * Self.stride)
        for i in 0..<clients {
            (records + i * Self.stride).bindMemory(to: FCRecord.self, capacity: 1)
                .initialize(to: FCRecord(operation: Operation(code: 0), result: 0, pending: 0, active: 0, age: 0, next: nil))
        }
        tally = CombiningTally(threads: clients, memory: memory)
        lockWord.initialize(to: 0)
        head.initialize(to: nil)
        passCount.initialize(to: 0)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        Context(record: records + thread.index * Self.stride, thread: thread.index)
    }

    public func freeContext(_ context: inout Context) { tally.depart() }

    @inline(__always) @usableFromInline
    static func record(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<FCRecord> { p.assumingMemoryBound(to: FCRecord.self) }
    @inline(__always) @usableFromInline
    static func pending(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt32> {
        (p + MemoryLayout<FCRecord>.offset(of: \FCRecord.pending)!).assumingMemoryBound(to: UInt32.self)
    }
    @inline(__always) @usableFromInline
    static func active(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt32> {
        (p + MemoryLayout<FCRecord>.offset(of: \FCRecord.active)!).assumingMemoryBound(to: UInt32.self)
    }
    @inline(__always) @usableFromInline
    static func next(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (p + MemoryLayout<FCRecord>.offset(of: \FCRecord.next)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }

    /// Pushes the owner's record at the head of the publication list.
    @inline(never) @usableFromInline
    func enqueue(_ rec: UnsafeMutableRawPointer) {
        cshims_u32_store_relaxed(Self.active(rec), 1)
        var h = cshims_ptr_load_acquire(head)
        repeat {
            cshims_ptr_store_relaxed(Self.next(rec), h)
            // Release: the record's link (and active) are visible to a combiner that finds it.
        } while !cshims_ptr_cas_release(head, &h, rec)
    }

    @inline(__always)
    public func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        let rec = context.record
        Self.record(rec).pointee.operation = op
        // Release: the operation is visible to the combiner that sees pending == 1.
        cshims_u32_store_release(Self.pending(rec), 1)
        while true {
            // Test, then test-and-set (acquire: the previous combiner's writes are visible).
            if cshims_u32_load_relaxed(lockWord) == 0 && cshims_u32_exchange_acquire(lockWord, 1) == 0 { break }
            var polls = 0
            while cshims_u32_load_relaxed(lockWord) != 0 && cshims_u32_load_acquire(Self.pending(rec)) != 0
                    && cshims_u32_load_relaxed(Self.active(rec)) != 0 {
                DelegationWait.pause(&polls, yields: yields)
            }
            // Acquire pairs with the combiner's release of pending: the result is visible.
            if cshims_u32_load_acquire(Self.pending(rec)) == 0 { return Self.record(rec).pointee.result }
            // Dropped by a clean-up while waiting (active is 0 only after the unlink): back in.
            if cshims_u32_load_acquire(Self.active(rec)) == 0 { enqueue(rec) }
        }
        // Served between our publication and our exchange: nothing of ours to apply, so we do not
        // combine (fc.c would): a combiner always applies its own operation first (header).
        // Acquire pairs with that combiner's release of pending: the result is visible.
        if cshims_u32_load_acquire(Self.pending(rec)) == 0 {
            cshims_u32_store_release(lockWord, 0)
            return Self.record(rec).pointee.result
        }
        combine(own: rec, target: target, thread: context.thread)
        return Self.record(rec).pointee.result
    }

    /// The combining pass, lock held, own record pending: the own operation, `rounds` scans, then
    /// now and then a clean-up; releases the lock.
    @inline(__always) @usableFromInline
    func combine<T: OperationTarget>(own rec: UnsafeMutableRawPointer, target: T, thread: Int) {
        if cshims_u32_load_relaxed(Self.active(rec)) == 0 { enqueue(rec) }
        let pass = passCount.pointee &+ 1
        passCount.pointee = pass
        var served: UInt64 = 0
        // Our own operation first, pending (execute checked), through our own target (header).
        Self.record(rec).pointee.result = target.apply(Self.record(rec).pointee.operation)
        Self.record(rec).pointee.age = pass
        // Release, as for any record: a later combiner reads pending with acquire.
        cshims_u32_store_release(Self.pending(rec), 0)
        served &+= 1
        for _ in 0..<rounds {
            var cur = cshims_ptr_load_acquire(head)
            while let r = cur {
                // Acquire pairs with the owner's release of pending: its operation is visible.
                if cshims_u32_load_acquire(Self.pending(r)) != 0 {
                    Self.record(r).pointee.result = target.apply(Self.record(r).pointee.operation)
                    Self.record(r).pointee.age = pass
                    cshims_u32_store_release(Self.pending(r), 0)
                    served &+= 1
                }
                cur = cshims_ptr_load_acquire(Self.next(r))
            }
        }
        if pass % cleanupEvery == 0 { cleanUp(pass: pass) }
        // Release: every application of this pass happens-before the next holder's.
        cshims_u32_store_release(lockWord, 0)
        tally.record(thread: thread, operations: served)
    }

    /// Drops the records (behind the head) unserved for `cleanupAge` passes; lock held.
    @inline(never) @usableFromInline
    func cleanUp(pass: UInt64) {
        guard var prev = cshims_ptr_load_acquire(head) else { return }
        while let cur = cshims_ptr_load_acquire(Self.next(prev)) {
            if Self.record(cur).pointee.age &+ cleanupAge < pass {
                cshims_ptr_store_relaxed(Self.next(prev), cshims_ptr_load_relaxed(Self.next(cur)))
                // Release: the unlink is done before the owner, seeing active == 0, pushes it again.
                cshims_u32_store_release(Self.active(cur), 0)
            } else {
                prev = cur
            }
        }
    }

    public func combiningCounts() -> CombiningCounts? { tally.totals() }

    public func deallocate() {
        memory.deallocate(shared, bytes: 3 * 128)
        memory.deallocate(records, bytes: clients * Self.stride)
        tally.deallocate(memory)
    }
}
