// Every lock is an executor through this one adapter: acquire, apply the operation in place,
// release. The lock code does not change. `execute` is `withLock` around the target's `apply`, so
// for a lock and the microbenchmark the loop compiles to what a hand-written lock loop would be
// (checked with objdump: README, "How it measures").

/// The executor of lock `L`: the critical section is the operation, run by the thread that asked.
@frozen
public struct LockExecutor<L: LockAlgorithm>: Executor {
    public typealias Context = L.Context

    public let lock: L

    public static var descriptor: LockDescriptor { L.descriptor }

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
    public func tryExecute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout L.Context) -> UInt64? {
        guard lock.tryLock(&context) else { return nil }
        let result = target.apply(op)
        lock.unlock(&context)
        return result
    }

    public func deallocate() { lock.deallocate() }
}
