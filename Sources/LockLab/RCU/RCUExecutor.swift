// The RCU executor: reads run inside the flavour's read-side section, beside updates and each
// other, touching nothing shared but what the flavour writes (a QSBR reader writes nothing);
// updates serialise on a writer lock from the lab's catalog (`rcu-qsbr:writer=mcs`), publish a
// new version, retire the old one through the domain's reclaimer, and after the lock is released
// wait for a grace period when the thread's limbo list is full (Reclamation.swift). This is
// test_urcu's loop (liburcu tests/benchmark/test_urcu.c) with the writers' exclusion made
// explicit and choosable.
//
// RCU is not a black box: the structure's reads must traverse what writers publish, so an RCU
// executor runs only on the workloads that have an RCU twin (Workloads/RCU*.swift: snapshot,
// hashtable, list), which the catalog builds for it with the flavour's domain; the plan refuses
// any other pairing in one line (`WorkloadSpec.pairingRefusal`). Reads go through `executeRead`
// (`ReadSharing.optimistic`: beside updates, each of one consistent state), so the harness's read
// check holds every read to the states its version window allows.
// Invariants: at most one update runs (the writer lock); a thread reports a quiescent state after
// every operation, outside any read-side section and outside the writer lock; a grace period is
// waited for only outside the writer lock and outside a read-side section, so a waiter never
// holds up another grace period or a writer.

import CShims

/// The writer locks an RCU executor can serialise updates on (`writer=` option), in the order of
/// `RCUExecutor.writerChoices`.
public enum RCUWriters {
    public static let choices = ["mcs", "ticket", "pthread-mutex", "futex-mutex"]
    public static let `default` = "mcs"
}

public struct RCUExecutor<Flavor: RCUFlavor, Writer: LockAlgorithm>: Executor {
    public struct Context {
        @usableFromInline var reader: Flavor.Reader
        @usableFromInline var writer: Writer.Context
        @usableFromInline let thread: Int
    }

    public static var descriptor: LockDescriptor {
        LockDescriptor(name: Flavor.name, family: .rcu, waiting: Writer.descriptor.waiting,
                       paper: Flavor.paper, supportsTryLock: false, options: options)
    }

    /// The flavour's options, then the writer lock's and reclamation's.
    public static var options: [LockOptionSpec] {
        Flavor.options + [
            LockOptionSpec("writer", choices: RCUWriters.choices, default: RCUWriters.default,
                           help: "the lock updates serialise on"),
            LockOptionSpec("batch", default: 4096, range: 1...65_536,
                           help: "nodes a thread retires before it waits for a grace period and frees them (liburcu urcu-defer-impl.h DEFER_QUEUE_SIZE 4096; 1: test_urcu's synchronize per update); also the bound on memory awaiting reclamation, per thread"),
        ]
    }

    public static var readSharing: ReadSharing { .optimistic }

    @usableFromInline let domain: RCUDomain<Flavor>
    @usableFromInline let writer: Writer

    /// Not made alone: the domain comes from the structure (`init(_:domain:)`).
    public init(_ environment: ExecutorEnvironment) throws {
        throw LabError.impossible("\(Flavor.name) runs only on a structure built for RCU (snapshot, hashtable, list)")
    }

    /// The executor over `domain`, the flavour and reclaimer its structure was built with.
    public init(_ environment: ExecutorEnvironment, domain: RCUDomain<Flavor>) throws {
        self.domain = domain
        let defaults = LockOptions(Dictionary(uniqueKeysWithValues: Writer.descriptor.options.map { ($0.key, $0.defaultValue) }))
        writer = try Writer(LockEnvironment(maxThreads: environment.clientThreads, nodeCount: environment.nodeCount,
                                            memory: environment.memory, options: defaults))
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        Context(reader: domain.flavor.register(thread: thread.index), writer: writer.makeContext(for: thread),
                thread: thread.index)
    }

    /// The thread's last retirements wait for their grace period and go back to the pool; then it
    /// goes offline.
    public func freeContext(_ context: inout Context) {
        domain.reclaimer.reclaim(thread: context.thread, flavor: domain.flavor, reader: &context.reader, atLeast: 1)
        writer.lock(&context.writer)
        domain.reclaimer.beginUpdate(thread: context.thread)
        writer.unlock(&context.writer)
        domain.flavor.unregister(&context.reader)
        writer.freeContext(&context.writer)
    }

    /// An update: under the writer lock; then, outside it, reclamation when the limbo is full and
    /// a quiescent state.
    @inline(__always)
    public func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        writer.lock(&context.writer)
        domain.reclaimer.beginUpdate(thread: context.thread)
        let result = target.apply(op)
        writer.unlock(&context.writer)
        domain.reclaimer.reclaim(thread: context.thread, flavor: domain.flavor, reader: &context.reader)
        domain.flavor.quiescentState(&context.reader)
        return result
    }

    /// A read: inside a read-side section; a quiescent state after it.
    @inline(__always)
    public func executeRead<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        domain.flavor.readLock(&context.reader)
        let result = target.apply(op)
        domain.flavor.readUnlock(&context.reader)
        domain.flavor.quiescentState(&context.reader)
        return result
    }

    public func measurementStarts(_ context: inout Context) {
        domain.reclaimer.measurementStarts(thread: context.thread)
    }

    public func reclamation() -> ReclamationSummary? { domain.reclaimer.summary() }

    /// The writer lock; the domain is the structure's and goes with it.
    public func deallocate() { writer.deallocate() }
}
