// cc-synch: queue-based combining.
//
// Paper: P. Fatourou, N. D. Kallimanis, "Revisiting the Combining Synchronization Technique",
// PPoPP 2012; the authors' code is the Synch framework (nkallima/sim-universal-construction,
// libconcurrent/concurrent/ccsynch.c).
// Idea: a thread swaps a spare node into the tail, writes its operation into the node it got back
// (the previous tail) and spins on that node. If a combiner served it, it takes the result; if
// not, it is the combiner: it walks the list from its own node applying the published operations,
// up to a help bound, and hands the combiner role to the first node it did not serve.
// Invariants:
//  - the list from the node the current combiner holds to the tail is the queue of requests; the
//    tail node is always an empty node whose owner has not yet written into it;
//  - a node's operation is read only after its `next` is non-nil (its owner wrote the operation,
//    then linked the next node with release), so the combiner never applies a half-written request;
//  - at most one thread is combiner: the role passes only by `wait = 0` without `completed`, on the
//    one node the previous combiner stopped at; `completed` is written before `wait` is released;
//  - a thread owns the node it got back from the tail once that node's `wait` is 0: it becomes the
//    thread's spare for its next operation (nodes migrate between threads; n + 1 nodes for n threads).
// Parameters: `help-factor`, the help bound (operations one combiner's pass applies, its own
// included) as a multiple of the clients. Default 3, the paper-era code's: synch1.0/ccsynch.h
// (Synch 1.0, 2011-12-02, commit c9621e0) and synch1.0.1/ccsynch.h (to 2012-11) declare
// `CCSIM_HELP_BOUND = 3 * N_THREADS`. The 2018 rewrite raised it to 10 (libconcurrent/concurrent/
// ccsynch.c: `CCSYNCH_HELP_BOUND = 10 * N_THREADS`, commit 1b26978; since 2020
// `CCSYNCH_HELP_FACTOR = 10`, help_bound = 10 * nthreads): `help-factor=10` runs that. Both
// versions count as `combine` does: `counter < bound` tested before each application, the
// combiner's own included. Nodes are one contiguous array of 128-byte blocks, as the authors'
// SYNCH_COMPACT_ALLOCATION. Waiters spin, and yield after 1024 polls only when
// the run's threads share CPUs (oversubscribed or unpinned: the framework's
// isSystemOversubscribed(); Delegation.swift).

import CShims

/// A CC-Synch request node, alone on its 128-byte block.
@usableFromInline
struct CCSynchNode {
    @usableFromInline var next: UnsafeMutableRawPointer?
    /// 1 while the owner must wait; set to 0 by a combiner (served, or the combiner role handed on).
    @usableFromInline var wait: UInt32
    /// 1 when the operation has been applied and `result` holds its result.
    @usableFromInline var completed: UInt32
    @usableFromInline var operation: Operation
    @usableFromInline var result: UInt64
}

/// The CC-Synch queue: a tail and the node operations, shared by cc-synch and (one per node) h-synch.
@usableFromInline
enum CCSynchQueue {
    @inline(__always) @usableFromInline
    static func node(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<CCSynchNode> {
        p.assumingMemoryBound(to: CCSynchNode.self)
    }

    @inline(__always) @usableFromInline
    static func nextField(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (p + MemoryLayout<CCSynchNode>.offset(of: \CCSynchNode.next)!).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }

    @inline(__always) @usableFromInline
    static func waitField(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt32> {
        (p + MemoryLayout<CCSynchNode>.offset(of: \CCSynchNode.wait)!).assumingMemoryBound(to: UInt32.self)
    }

    @inline(__always) @usableFromInline
    static func completedField(_ p: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt32> {
        (p + MemoryLayout<CCSynchNode>.offset(of: \CCSynchNode.completed)!).assumingMemoryBound(to: UInt32.self)
    }

    /// Publishes `op` in the queue on `tail` with the thread's spare node `spare`; on return
    /// `spare` is the thread's next spare, and the result is either there (`served`) or the
    /// thread is the combiner of the node it returns. `yields`: the wait yields after a while
    /// (the run's threads share CPUs, `DelegationWait`).
    @inline(__always) @usableFromInline
    static func announce(_ op: Operation, tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>,
                         spare: inout UnsafeMutableRawPointer, yields: Bool) -> (node: UnsafeMutableRawPointer, served: Bool) {
        let next = spare
        cshims_ptr_store_relaxed(nextField(next), nil)
        cshims_u32_store_relaxed(completedField(next), 0)
        cshims_u32_store_relaxed(waitField(next), 1)
        // acq_rel: release publishes next's reset to whoever links behind it; acquire pairs with
        // the previous tail owner's reset of `cur`.
        let cur = cshims_ptr_exchange_acq_rel(tail, next)!
        node(cur).pointee.operation = op
        // Release: the operation is visible before the link that lets a combiner apply it.
        cshims_ptr_store_release(nextField(cur), next)
        spare = cur
        var polls = 0
        // Acquire pairs with the combiner's release of `wait`: result and completed are visible.
        while cshims_u32_load_acquire(waitField(cur)) != 0 { DelegationWait.pause(&polls, yields: yields) }
        return (cur, cshims_u32_load_relaxed(completedField(cur)) != 0)
    }

    /// The combiner's pass from its own node `start`: applies every linked request, up to
    /// `helpBound`, through `target`; hands the role to the first node it does not serve.
    /// Returns the operations applied (its own included).
    @inline(__always) @usableFromInline
    static func combine<T: OperationTarget>(from start: UnsafeMutableRawPointer, helpBound: Int, target: T) -> UInt64 {
        var p = start
        var served = 0
        while served < helpBound, let next = cshims_ptr_load_acquire(nextField(p)) {
            served &+= 1
            node(p).pointee.result = target.apply(node(p).pointee.operation)
            cshims_u32_store_relaxed(completedField(p), 1)
            if p != start {
                // Release: result and completed before the owner stops waiting. After this store
                // the node is its owner's again: p is not touched past it.
                cshims_u32_store_release(waitField(p), 0)
            }
            p = next
        }
        // Hand over the combiner role (p is linked but unserved, or the empty tail node).
        cshims_u32_store_release(waitField(p), 0)
        return UInt64(served)
    }
}

public struct CCSynchExecutor: Executor {
    public struct Context {
        @usableFromInline var spare: UnsafeMutableRawPointer
        @usableFromInline let thread: Int
    }

    public static let descriptor = LockDescriptor(
        name: "cc-synch", family: .delegation, waiting: .spin,
        paper: "Fatourou & Kallimanis, PPoPP 2012",
        supportsTryLock: false,
        options: [LockOptionSpec("help-factor", default: 3, range: 1...1_000_000,
                                 help: "help bound = help-factor x clients: ops one combining pass applies (3: paper-era synch1.0 ccsynch.h; 10: 2018+ libconcurrent ccsynch.c)")])

    @usableFromInline let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    @usableFromInline let nodes: UnsafeMutableRawPointer
    @usableFromInline let helpBound: Int
    @usableFromInline let tally: CombiningTally
    /// Waiters yield after a while (the run's threads share CPUs).
    @usableFromInline let yields: Bool
    let nodeCount: Int
    let memory: LabMemory
    static let stride = LabMemory.paddedStride(of: CCSynchNode.self)

    public init(_ environment: ExecutorEnvironment) {
        memory = environment.memory
        let clients = environment.clientThreads
        helpBound = environment.options.int("help-factor") * clients
        yields = environment.threadsShareCPUs
        nodeCount = clients + 1
        nodes = memory.allocate(bytes: nodeCount * Self.stride)
        for i in 0..<nodeCount {
            (nodes + i * Self.stride).bindMemory(to: CCSynchNode.self, capacity: 1)
                .initialize(to: CCSynchNode(next: nil, wait: 0, completed: 0, operation: Operation(code: 0), result: 0))
        }
        // The last node starts as the tail: empty, not waiting (its first taker combines).
        tail = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
        tail.initialize(to: nodes + clients * Self.stride)
        tally = CombiningTally(threads: clients, memory: memory)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        Context(spare: nodes + thread.index * Self.stride, thread: thread.index)
    }

    public func freeContext(_ context: inout Context) { tally.depart() }

    @inline(__always)
    public func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        let (cur, served) = CCSynchQueue.announce(op, tail: tail, spare: &context.spare, yields: yields)
        if !served {
            let applied = CCSynchQueue.combine(from: cur, helpBound: helpBound, target: target)
            tally.record(thread: context.thread, operations: applied)
        }
        return CCSynchQueue.node(cur).pointee.result
    }

    public func combiningCounts() -> CombiningCounts? { tally.totals() }

    public func deallocate() {
        memory.deallocate(nodes, bytes: nodeCount * Self.stride)
        memory.deallocate(UnsafeMutableRawPointer(tail), bytes: LabMemory.alignment)
        tally.deallocate(memory)
    }
}
