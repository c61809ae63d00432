// mcs, mcs-stp: the Mellor-Crummey & Scott queue lock, spinning or spin-then-park (WaitingPolicy).
//
// Paper: J. M. Mellor-Crummey, M. L. Scott, "Algorithms for Scalable Synchronization on
// Shared-Memory Multiprocessors", ACM TOCS 9(1), 1991.
// Idea: the lock is a tail pointer to a queue of per-thread nodes. A thread swaps its node into the
// tail, links itself behind its predecessor and spins on its own node; release hands to `next`.
// Invariants:
//  - tail == nil iff the lock is free and no thread is queued;
//  - exactly one queued node, the head, belongs to the holder; every other waiter spins on its own
//    node's `locked` word, which only its predecessor writes;
//  - a node is reused only after its owner's unlock has returned (the harness's per-thread context).
// Waiting: a type parameter. `mcs` spins on `locked`; `mcs-stp` (LiTL's MCS-STP) spins a while, then
// parks on `locked` (1 -> 2) and the releaser's handover becomes an exchange that wakes it
// (WaitingPolicy.swift). Option `spin-limit` (LiTL: 2700 pauses).
// Layout: each node is padded to 128 bytes; the tail has its own 128-byte block.

import CShims

/// `mcs` (spinning) and `mcs-stp` (spin-then-park).
public typealias MCSLock = MCS<SpinWaiting>
public typealias MCSSpinThenParkLock = MCS<SpinThenParkWaiting>

public struct MCS<Waiting: WaitingPolicy>: LockAlgorithm {
    public struct Context {
        @usableFromInline let node: UnsafeMutablePointer<MCSNode>
    }

    public static var descriptor: LockDescriptor {
        LockDescriptor(
            name: "mcs" + Waiting.nameSuffix, family: .queue, waiting: Waiting.kind,
            paper: Waiting.kind == .spin ? "Mellor-Crummey & Scott, ACM TOCS 1991"
                : "Mellor-Crummey & Scott, ACM TOCS 1991; spin-then-park as LiTL (Guiroux et al., ATC 2016)",
            supportsTryLock: true, options: Waiting.options)
    }

    /// Tail of the waiter queue (a `MCSNode*`), alone on its block.
    @usableFromInline let tail: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    @usableFromInline let memory: LabMemory
    /// mcs-stp: pause iterations before parking (`spin-limit`); unused by mcs.
    @usableFromInline let spinLimit: Int

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        spinLimit = Waiting.spinLimit(environment.options)
        tail = memory.allocate(bytes: LabMemory.alignment)
            .bindMemory(to: UnsafeMutableRawPointer?.self, capacity: 1)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        // Local memory: the node is touched first by its own thread, after pinning.
        let raw = LabMemory().allocatePadded(MCSNode.self)
        return Context(node: raw.bindMemory(to: MCSNode.self, capacity: 1))
    }

    public func freeContext(_ context: inout Context) {
        LabMemory().deallocate(UnsafeMutableRawPointer(context.node), bytes: LabMemory.paddedStride(of: MCSNode.self))
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        MCSQueue.acquire(UnsafeMutableRawPointer(context.node), tail: tail, waiting: Waiting.self, spinLimit: spinLimit)
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        MCSQueue.tryAcquire(UnsafeMutableRawPointer(context.node), tail: tail)
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        MCSQueue.release(UnsafeMutableRawPointer(context.node), tail: tail, waiting: Waiting.self)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(tail), bytes: LabMemory.alignment)
    }
}
