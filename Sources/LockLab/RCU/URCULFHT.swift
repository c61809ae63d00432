// urcu-lfht: liburcu's lock-free resizable hash table (cds_lfht, liburcu-cds 0.13.2,
// src/rculfhash.c; Desnoyers, McKenney, Triplett, "Resizable, Scalable, Concurrent Hash Tables via
// Relativistic Programming" / liburcu's split-ordered lists after Shalev & Shavit, JACM 2006) as
// the reference structure on the hashtable workload, over one of liburcu's flavours
// (`flavour=memb|qsbr|mb|bp`, default memb, liburcu's default).
//
// Idea: a get is a cds_lfht_lookup inside the flavour's read-side section (no lock, nothing
// shared written); a put is cds_lfht_add_replace of a fresh item, a delete a lookup and
// cds_lfht_del; the item they take out is freed by call_rcu after a grace period
// (Workloads/URCULFHashTable.swift). cds_lfht's updates are lock-free, but this executor runs
// them one at a time under an MCS lock: the harness's checks (the plain counter, the seqlock
// version word a read's window is read from, the log replayed on the sequential model) need
// updates that exclude each other, and without them a run is a mutual-exclusion failure by
// construction. So the figures are lfht's reads beside serialised lfht updates (each still
// pays add_replace's or del's two full fences, malloc and call_rcu), comparable with the lab's
// RCU twins, whose updates also serialise. Lock-free updates measured would need the harness to
// accept concurrent updates (an atomic counter, a per-key linearisation order for the log).
// Invariants: every operation runs in a read-side section (cds_lfht asks it of updates too);
// a thread registers with the flavour before its first operation and unregisters after its last
// (makeContext / freeContext, on the thread); a qsbr thread reports a quiescent state after every
// operation, outside the section and outside the writer lock.

import CShims

public struct URCULFHTExecutor<Flavor: LiburcuFlavor>: Executor {
    public struct Context {
        @usableFromInline var reader: Flavor.Reader
        @usableFromInline var writer: MCSLock.Context
    }

    public static var name: String { "urcu-lfht" }
    /// The flavours, in the order of LockRegistry's variants.
    public static var flavourChoices: [String] { ["memb", "qsbr", "mb", "bp"] }

    public static var descriptor: LockDescriptor {
        LockDescriptor(name: name, family: .rcu, waiting: MCSLock.descriptor.waiting,
                       paper: "liburcu 0.13.2 liburcu-cds cds_lfht (src/rculfhash.c; split-ordered lists, Shalev & Shavit JACM 2006), over liburcu's \(Flavor.name); updates serialised on mcs for the harness's checks; hashtable only",
                       supportsTryLock: false,
                       options: [LockOptionSpec("flavour", choices: flavourChoices, default: "memb",
                                                help: "liburcu's flavour the table and its readers use")])
    }

    public static var readSharing: ReadSharing { .optimistic }

    @usableFromInline let flavor: Flavor
    @usableFromInline let writer: MCSLock

    public init(_ environment: ExecutorEnvironment) throws {
        flavor = try Flavor(threads: environment.clientThreads, memory: environment.memory, options: environment.options)
        let defaults = LockOptions(Dictionary(uniqueKeysWithValues: MCSLock.descriptor.options.map { ($0.key, $0.defaultValue) }))
        writer = MCSLock(LockEnvironment(maxThreads: environment.clientThreads, nodeCount: environment.nodeCount,
                                             memory: environment.memory, options: defaults))
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        Context(reader: flavor.register(thread: thread.index), writer: writer.makeContext(for: thread))
    }

    /// Offline and out of the flavour's registry; the items it retired are freed by liburcu's
    /// call_rcu thread (the workload's deallocate waits for them with rcu_barrier).
    public func freeContext(_ context: inout Context) {
        flavor.unregister(&context.reader)
        writer.freeContext(&context.writer)
    }

    /// An update: under the writer lock, inside a read-side section; a quiescent state after.
    @inline(__always)
    public func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        writer.lock(&context.writer)
        flavor.readLock(&context.reader)
        let result = target.apply(op)
        flavor.readUnlock(&context.reader)
        writer.unlock(&context.writer)
        flavor.quiescentState(&context.reader)
        return result
    }

    /// A read: inside a read-side section, beside updates; a quiescent state after.
    @inline(__always)
    public func executeRead<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        flavor.readLock(&context.reader)
        let result = target.apply(op)
        flavor.readUnlock(&context.reader)
        flavor.quiescentState(&context.reader)
        return result
    }

    public func deallocate() {
        writer.deallocate()
        flavor.deallocate()
    }
}
