// seqlock: Linux's sequence lock (include/linux/seqlock.h: seqlock_t, a seqcount_t beside a
// spinlock_t; here the lab's qspinlock, which spinlock_t is on x86), written for C11 as Boehm
// gives it ("Can Seqlocks Get Along With Programming Language Memory Models?", MSPC 2012, §4).
//
// Idea: a writer takes the spinlock, makes the sequence odd, writes, makes it even again. A reader
// waits for an even sequence, reads with atomic loads, and retries if the sequence moved: readers
// store nothing at all (no line bounces between them) and a writer never waits for a reader, so
// readers can starve under a stream of writes, and a read runs beside an update, so the structure
// must tolerate that (`SequentialStructure.readsTolerateConcurrentUpdates`: bounded, atomic loads,
// nothing freed); any other pairing is refused before the run (`ReadSharing.optimistic`).
// Invariants: the sequence is odd iff a writer is between its two stores; writers are serialised
// by the spinlock; a read whose two sequence loads return the same even value overlapped no
// write (every write lies wholly before or after it), so its result is of one state.
// Orders (Boehm's seqlock, "version 2"): reader: sequence acquire load, data relaxed loads,
// acquire fence, sequence relaxed load. Writer: sequence relaxed store (odd), release fence, data
// relaxed stores, sequence release store (even): read_seqbegin / read_seqretry and
// write_seqlock / write_sequnlock's smp_rmb and smp_wmb, as C11 says them.

import CShims

public struct SeqlockExecutor: Executor {
    public typealias Context = QSpinlockLock.Context

    public static var descriptor: LockDescriptor {
        LockDescriptor(name: "seqlock", family: .readerWriter, waiting: .spin,
                       paper: "Linux include/linux/seqlock.h (seqlock_t); C11 orders from Boehm, MSPC 2012",
                       supportsTryLock: true, maxThreads: QSpinlockLayout.maxCPUs)
    }

    public static var readSharing: ReadSharing { .optimistic }

    /// Writers' mutual exclusion (write_seqlock's spin_lock).
    @usableFromInline let writers: QSpinlockLock
    /// The sequence count, alone on its line: odd while a writer writes.
    @usableFromInline let sequence: UnsafeMutablePointer<UInt64>
    let memory: LabMemory

    public init(_ environment: ExecutorEnvironment) throws {
        memory = environment.memory
        writers = try QSpinlockLock(LockEnvironment(maxThreads: environment.clientThreads, nodeCount: environment.nodeCount,
                                                    memory: environment.memory, options: LockOptions([:])))
        sequence = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt64.self, capacity: 1)
        sequence.initialize(to: 0)
    }

    @inline(__always)
    public func makeContext(for thread: ThreadSlot) -> Context { writers.makeContext(for: thread) }

    @inline(__always)
    public func freeContext(_ context: inout Context) { writers.freeContext(&context) }

    /// write_seqlock, the update, write_sequnlock.
    @inline(__always)
    public func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        writers.lock(&context)
        let result = write(op, on: target)
        writers.unlock(&context)
        return result
    }

    @inline(__always)
    public func tryExecute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64? {
        guard writers.tryLock(&context) else { return nil }
        let result = write(op, on: target)
        writers.unlock(&context)
        return result
    }

    /// The writer's sequence protocol around `op` (the spinlock held).
    @inline(__always) @usableFromInline
    func write<T: OperationTarget>(_ op: Operation, on target: T) -> UInt64 {
        // Relaxed: only writers store the sequence, and they are serialised by the spinlock.
        let s = cshims_u64_load_relaxed(sequence)
        cshims_u64_store_relaxed(sequence, s &+ 1)
        // Release fence (smp_wmb): a reader that sees any of the update's stores also sees the
        // odd sequence when it loads it again after its acquire fence.
        cshims_fence_release()
        let result = target.apply(op)
        // Release: the update's stores come before the even sequence a reader starts from.
        cshims_u64_store_release(sequence, s &+ 2)
        return result
    }

    /// read_seqbegin, the read, read_seqretry, until a read saw no write.
    @inline(__always)
    public func executeRead<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        while true {
            // Acquire: the read's loads come after it (and after the writer's even store).
            let s = cshims_u64_load_acquire(sequence)
            if s & 1 != 0 {
                cshims_pause()
                continue
            }
            let result = target.apply(op)
            // Acquire fence (smp_rmb): the read's loads come before the second sequence load.
            cshims_fence_acquire()
            if cshims_u64_load_relaxed(sequence) == s { return result }
        }
    }

    public func deallocate() {
        writers.deallocate()
        memory.deallocate(UnsafeMutableRawPointer(sequence), bytes: LabMemory.alignment)
    }
}
