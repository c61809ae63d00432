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
// acquiring and releasing the global lock (an MCS lock, `MCSQueue`; the authors use a CLH lock);
// a thread always announces in the queue of its own node (its slot's node: virtual nodes count),
// so a node's queue holds only that node's threads' requests.
// Parameters: `help-factor` (help bound = help-factor x clients; HSYNCH_HELP_FACTOR = 10 in
// hsynch.c). Queues: one per node of the run. The authors found H-Synch best with fewer, larger
// clusters than the hardware has: `--virtual-nodes` sets them.

import CShims

public struct HSynchExecutor: Executor {
    public struct Context {
        @usableFromInline var spare: UnsafeMutableRawPointer
        @usableFromInline let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
        /// The thread's node of the global MCS lock.
        @usableFromInline let lockNode: UnsafeMutableRawPointer
        @usableFromInline let thread: Int
    }

    public static let descriptor = LockDescriptor(
        name: "h-synch", family: .delegation, waiting: .spin,
        paper: "Fatourou & Kallimanis, PPoPP 2012",
        supportsTryLock: false,
        options: [LockOptionSpec("help-factor", default: 10, range: 1...1_000_000,
                                 help: "help bound = help-factor x clients (hsynch.c: 10)")])

    /// One 128-byte block per node: that node's queue tail.
    @usableFromInline let tails: UnsafeMutableRawPointer
    /// The global lock's tail (an MCS lock), on its own block.
    @usableFromInline let globalTail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    @usableFromInline let nodes: UnsafeMutableRawPointer
    @usableFromInline let helpBound: Int
    @usableFromInline let tally: CombiningTally
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
        globalTail = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
        globalTail.initialize(to: nil)
        tally = CombiningTally(threads: clients, memory: memory)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        let queue = thread.node % queueCount
        return Context(spare: nodes + thread.index * Self.stride,
                       tail: (tails + queue * LabMemory.alignment).assumingMemoryBound(to: UnsafeMutableRawPointer?.self),
                       lockNode: LabMemory().allocatePadded(MCSNode.self), thread: thread.index)
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(context.lockNode, bytes: LabMemory.paddedStride(of: MCSNode.self))
        tally.depart()
    }

    @inline(__always)
    public func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        let (cur, served) = CCSynchQueue.announce(op, tail: context.tail, spare: &context.spare)
        if !served {
            // This node's combiner: the global lock orders it with the other nodes' combiners.
            MCSQueue.acquire(context.lockNode, tail: globalTail)
            let applied = CCSynchQueue.combine(from: cur, helpBound: helpBound, target: target)
            MCSQueue.release(context.lockNode, tail: globalTail)
            tally.record(thread: context.thread, operations: applied)
        }
        return CCSynchQueue.node(cur).pointee.result
    }

    public func combiningCounts() -> CombiningCounts? { tally.totals() }

    public func deallocate() {
        memory.deallocate(nodes, bytes: nodeCount * Self.stride)
        memory.deallocate(tails, bytes: queueCount * LabMemory.alignment)
        memory.deallocate(UnsafeMutableRawPointer(globalTail), bytes: LabMemory.alignment)
        tally.deallocate(memory)
    }
}
