// h-synch: hierarchical queue-based combining, one CC-Synch queue per NUMA node.
//
// Paper: P. Fatourou, N. D. Kallimanis, "Revisiting the Combining Synchronization Technique",
// PPoPP 2012; the authors' code: the Synch framework (nkallima/sim-universal-construction,
// libconcurrent/concurrent/hsynch.c).
// Idea: each node has its own CC-Synch queue (cc-synch's `CCSynchQueue`); a thread announces its
// operation in its node's queue. A node's combiner first takes a global lock, then serves its
// node's requests up to the help bound, hands its node's combiner role on and releases the global
// lock. Combiners of different nodes take turns on the structure; the requests of one node are
// applied together, so the structure's lines move between nodes once per pass, not once per
// operation.
// Invariants: cc-synch's, per node queue; plus: a thread applies operations only between
// acquiring and releasing the global lock; a thread always announces in the queue of its own
// node (its slot's node: virtual nodes count), so a node's queue holds only that node's threads'
// requests.
// The global lock is a CLH lock, as the authors' (libconcurrent/primitives/clh.c): a combiner
// sets its lock node's `locked`, swaps it into the lock's tail and waits on the predecessor node
// it got back; it releases by clearing its own node's `locked` (release) and takes the
// predecessor's node as its node for the next acquisition. Lock nodes: one per client plus the
// tail's first node (unlocked), one 128-byte block each; a node is waited on only by the thread
// that swapped in behind it, and written only by its current owner. Release is one store (no
// wait for a successor's link, unlike MCS), so a preempted successor never stalls the holder.
// Waiting (the announce and the global lock): spin with `pause`; only when the run's threads
// share CPUs (oversubscribed or unpinned) yield after 1024 polls, as clh.c's waiters call
// `resched()` when `isSystemOversubscribed()` (Delegation.swift). A pure spin on the global lock
// collapsed h-synch oversubscribed: node combiners burnt their slices while the holder was off
// its CPU.
// Parameters: `help-factor` (help bound = help-factor x clients, the operations one node
// combiner's pass applies, its own included). Default 3, the paper-era code's: synch1.0/hsynch.h
// and synch1.0.1/hsynch.h (2011-2012) declare `HSYNCH_HELP_BOUND = 3 * N_THREADS`; the 2018
// rewrite's libconcurrent/concurrent/hsynch.c has `10 * N_THREADS` (since 2020
// `HSYNCH_HELP_FACTOR 10`): `help-factor=10` runs that. N_THREADS is all threads, not one node's:
// so here, the run's clients. Queues: one per node of the run. The authors found H-Synch best with fewer, larger
// clusters than the hardware has: `--virtual-nodes` sets them.

import CShims

public struct HSynchExecutor: Executor {
    public struct Context {
        @usableFromInline var spare: UnsafeMutableRawPointer
        @usableFromInline let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
        /// The thread's node of the global CLH lock (CLH nodes migrate: after each release it is
        /// the node the thread waited on).
        @usableFromInline var lockNode: UnsafeMutableRawPointer
        /// The node the thread waited on in its current acquisition of the global lock.
        @usableFromInline var lockPredecessor: UnsafeMutableRawPointer
        @usableFromInline let thread: Int
    }

    public static let descriptor = LockDescriptor(
        name: "h-synch", family: .delegation, waiting: .spin,
        paper: "Fatourou & Kallimanis, PPoPP 2012",
        supportsTryLock: false,
        options: [LockOptionSpec("help-factor", default: 3, range: 1...1_000_000,
                                 help: "help bound = help-factor x clients: ops one node combiner's pass applies (3: paper-era synch1.0 hsynch.h; 10: 2018+ libconcurrent hsynch.c)")])

    /// One 128-byte block per node: that node's queue tail.
    @usableFromInline let tails: UnsafeMutableRawPointer
    /// The global lock's tail (a CLH lock), on its own block.
    @usableFromInline let globalTail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// The global lock's nodes: one 128-byte block per client, then the tail's first node.
    @usableFromInline let lockNodes: UnsafeMutableRawPointer
    @usableFromInline let nodes: UnsafeMutableRawPointer
    @usableFromInline let helpBound: Int
    @usableFromInline let tally: CombiningTally
    /// Waiters yield after a while (the run's threads share CPUs; Delegation.swift).
    @usableFromInline let yields: Bool
    let queueCount: Int
    let nodeCount: Int
    let clients: Int
    let memory: LabMemory
    static let stride = LabMemory.paddedStride(of: CCSynchNode.self)

    public init(_ environment: ExecutorEnvironment) {
        memory = environment.memory
        clients = environment.clientThreads
        queueCount = environment.nodeCount
        helpBound = environment.options.int("help-factor") * clients
        yields = environment.threadsShareCPUs
        // A node per client, plus each queue's first (empty) tail node.
        nodeCount = clients + queueCount
        nodes = memory.allocate(bytes: nodeCount * Self.stride)
        for i in 0..<nodeCount {
            (nodes + i * Self.stride).bindMemory(to: CCSynchNode.self, capacity: 1)
                .initialize(to: CCSynchNode(next: nil, wait: 0, completed: 0, operation: Operation(code: 0), result: 0))
        }
        tails = memory.allocate(bytes: queueCount * LabMemory.alignment)
        for q in 0..<queueCount {
            (tails + q * LabMemory.alignment).bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
                .initialize(to: nodes + (clients + q) * Self.stride)
        }
        lockNodes = memory.allocate(bytes: (clients + 1) * LabMemory.alignment)
        for i in 0...clients {
            (lockNodes + i * LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 1).initialize(to: 0)
        }
        // The tail starts at the extra node, unlocked: the first combiner takes the lock at once.
        globalTail = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
        globalTail.initialize(to: lockNodes + clients * LabMemory.alignment)
        tally = CombiningTally(threads: clients, memory: memory)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        let queue = thread.node % queueCount
        let lockNode = lockNodes + thread.index * LabMemory.alignment
        return Context(spare: nodes + thread.index * Self.stride,
                       tail: (tails + queue * LabMemory.alignment).assumingMemoryBound(to: UnsafeMutableRawPointer?.self),
                       lockNode: lockNode, lockPredecessor: lockNode, thread: thread.index)
    }

    public func freeContext(_ context: inout Context) { tally.depart() }

    /// Polls of the global lock before the first yield when the run's threads share CPUs.
    @usableFromInline static let globalSpinsBeforeYield = 0

    @inline(__always) @usableFromInline
    static func locked(_ lockNode: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt32> {
        lockNode.assumingMemoryBound(to: UInt32.self)
    }

    /// Takes the global CLH lock with the thread's lock node.
    @inline(__always) @usableFromInline
    func acquireGlobal(_ context: inout Context) {
        let me = context.lockNode
        cshims_u32_store_relaxed(Self.locked(me), 1)
        // acq_rel: release publishes `locked = 1` to the thread that swaps in behind us (it reads
        // it after its own exchange on the tail); acquire orders us after the previous owner of
        // the node we get back.
        let predecessor = cshims_ptr_exchange_acq_rel(globalTail, me)!
        context.lockPredecessor = predecessor
        var polls = 0
        // Acquire pairs with the predecessor's release of `locked = 0`: its pass happens-before ours.
        // Sharing CPUs, yield from the first poll, as clh.c's `resched()`: the holder is a
        // combiner mid-pass, seldom done within a spin budget if it is off its CPU.
        while cshims_u32_load_acquire(Self.locked(predecessor)) != 0 {
            DelegationWait.pause(&polls, yields: yields, spins: Self.globalSpinsBeforeYield)
        }
    }

    /// Releases the global CLH lock; the predecessor's node becomes the thread's lock node.
    @inline(__always) @usableFromInline
    func releaseGlobal(_ context: inout Context) {
        // Release: this pass's applications happen-before the successor's acquire load.
        cshims_u32_store_release(Self.locked(context.lockNode), 0)
        // Nobody waits on the predecessor's node any more (we were its only waiter): it is ours.
        context.lockNode = context.lockPredecessor
    }

    @inline(__always)
    public func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        let (cur, served) = CCSynchQueue.announce(op, tail: context.tail, spare: &context.spare, yields: yields)
        if !served {
            // This node's combiner: the global lock orders it with the other nodes' combiners.
            acquireGlobal(&context)
            let applied = CCSynchQueue.combine(from: cur, helpBound: helpBound, target: target)
            releaseGlobal(&context)
            tally.record(thread: context.thread, operations: applied)
        }
        return CCSynchQueue.node(cur).pointee.result
    }

    public func combiningCounts() -> CombiningCounts? { tally.totals() }

    public func deallocate() {
        memory.deallocate(nodes, bytes: nodeCount * Self.stride)
        memory.deallocate(tails, bytes: queueCount * LabMemory.alignment)
        memory.deallocate(UnsafeMutableRawPointer(globalTail), bytes: LabMemory.alignment)
        memory.deallocate(lockNodes, bytes: (clients + 1) * LabMemory.alignment)
        tally.deallocate(memory)
    }
}
