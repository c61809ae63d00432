// The reader-writer lock protocol and its executor: the write side is the `LockAlgorithm` every
// lock has (so a reader-writer lock is an ordinary exclusive lock on a workload without reads, and
// the generic validator and torture drive its write side unchanged), the read side is
// `readLock`/`readUnlock`. `ReaderWriterExecutor` declares `readSharing == .shared`: the harness
// then sends the workload's reads through `readLock`, its updates through `lock`.
//
// Invariants every conformer keeps: while any thread holds the write side, no thread holds either
// side; while any thread holds the read side, no thread holds the write side. The harness checks
// both: the plain counter (writers) and the version word a read loads before and after itself
// (a read that overlapped an update fails the run; Harness, "Reads").

import CShims

/// The reader's side of the Dekker-style handshake that rwlock, brlock and c-rw-wp share (ck_rwlock's
/// and ck_brlock's read_lock): wait while `writers` is non-zero, count in on `indicator`, and back
/// out if a writer arrived meanwhile. Seq-cst increment, then seq-cst load: counted in before
/// `writers` is read again; with the writer's seq-cst announcement and seq-cst loads of the
/// indicators, one of the two sees the other (acq_rel would not order the store before the load of
/// another word). The load is also the acquire that orders the last writer's release before our
/// reads. Writer preference: an announced writer turns new readers away.
@inline(__always) @usableFromInline
func enterReadSide(_ indicator: UnsafeMutablePointer<UInt32>, unlessWriter writers: UnsafeMutablePointer<UInt32>) {
    while true {
        while cshims_u32_load_relaxed(writers) != 0 { cshims_pause() }
        _ = cshims_u32_fetch_add_seq_cst(indicator, 1)
        if cshims_u32_load_seq_cst(writers) == 0 { return }
        // A writer came in between: back out (release: nothing was read), let it drain.
        _ = cshims_u32_fetch_sub_release(indicator, 1)
    }
}

/// A lock with a shared (read) side beside its exclusive (write) side.
public protocol ReaderWriterLock: LockAlgorithm {
    /// Waits until no writer holds the lock and enters as one of possibly many readers.
    func readLock(_ context: inout Context)
    /// Leaves the read side.
    func readUnlock(_ context: inout Context)
}

/// The executor of reader-writer lock `L`: reads under the read side, updates under the write
/// side, each applied by the thread that asked.
@frozen
public struct ReaderWriterExecutor<L: ReaderWriterLock>: Executor {
    public typealias Context = L.Context

    public let lock: L

    public static var descriptor: LockDescriptor { L.descriptor }
    public static var readSharing: ReadSharing { .shared }

    public init(_ environment: ExecutorEnvironment) throws {
        lock = try L(LockEnvironment(maxThreads: environment.clientThreads, nodeCount: environment.nodeCount,
                                     memory: environment.memory, options: environment.options))
    }

    @inline(__always)
    public func makeContext(for thread: ThreadSlot) -> L.Context { lock.makeContext(for: thread) }

    @inline(__always)
    public func freeContext(_ context: inout L.Context) { lock.freeContext(&context) }

    @inline(__always)
    public func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout L.Context) -> UInt64 {
        lock.withLock(&context) { target.apply(op) }
    }

    @inline(__always)
    public func executeRead<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout L.Context) -> UInt64 {
        lock.readLock(&context)
        let result = target.apply(op)
        lock.readUnlock(&context)
        return result
    }

    @inline(__always)
    public func tryExecute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout L.Context) -> UInt64? {
        guard lock.tryLock(&context) else { return nil }
        let result = target.apply(op)
        lock.unlock(&context)
        return result
    }

    public func deallocate() { lock.deallocate() }
}
