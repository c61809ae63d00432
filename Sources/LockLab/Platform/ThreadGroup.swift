// One thread machinery for everything that runs threads: the measured runs, torture and, later,
// helper threads (a delegation server, a combiner's helper). A group spawns one thread per slot,
// pins it when the slot names a CPU, and owns the words the threads share:
//
//   phase     0 barrier, 1 warm-up, 2 measure (torture: run), 3 stop, 4 abort (the group could
//             not start: leave at the barrier without an outcome); written by the controller,
//             read by every thread with a relaxed load once per iteration (written a handful of
//             times per run, so its line stays shared in every cache)
//   ready     threads that reached the start barrier
//   finished  threads whose body returned (after publishing their outcome)
//   failure   the first thread that could not start or pin: (errno << 32) | (index + 1)
//   progress  one word per thread, its operations so far, for the watchdog
//
// each on its own 128-byte block (docs/performance.md, "False sharing"). The watchdog declares a group hung
// when the sum of the progress words and `finished` stands still for the stall timeout; a hung
// group is abandoned: its threads are detached and the memory they spin on is never freed.
// A thread that cannot be created (pthread_create fails: EAGAIN under a thread or memory limit) or
// pinned ends the group cleanly: the threads already started leave at the start barrier, are
// joined, and `start` throws `ThreadGroupError` with the reason.

import CShims
import Foundation

/// One thread of a run, the same from the plan to the lock context: its index in the run, the CPU
/// it is pinned to (nil: unpinned) and its NUMA node (real or virtual, from the placement; never
/// computed from the CPU number by a lock).
public struct ThreadSlot: Sendable, Equatable {
    public let index: Int
    /// The CPU to pin to; nil leaves the thread unpinned.
    public let cpu: Int?
    public let node: Int
    public init(index: Int, cpu: Int?, node: Int) {
        self.index = index
        self.cpu = cpu
        self.node = node
    }
}

/// Values of a group's phase word.
public enum GroupPhase {
    public static let barrier: UInt32 = 0
    public static let warmup: UInt32 = 1
    /// The measured phase (torture: the run).
    public static let measure: UInt32 = 2
    /// The run ended (a thread that reaches the barrier only now still publishes its outcome).
    public static let stop: UInt32 = 3
    /// The group could not start every thread: leave at the barrier, publishing nothing.
    public static let abort: UInt32 = 4
}

/// Why a group could not start.
public enum ThreadGroupError: Error, CustomStringConvertible, Equatable {
    /// pthread_create failed for thread `thread` with `errno` (EAGAIN: a thread or memory limit).
    case cannotCreate(thread: Int, errno: Int32)
    /// Thread `thread` could not be pinned to `cpu` (sched_setaffinity's errno).
    case cannotPin(thread: Int, cpu: Int, errno: Int32)

    public var description: String {
        switch self {
        case let .cannotCreate(thread, e):
            return "cannot create thread \(thread): \(String(cString: strerror(e))) (errno \(e))"
        case let .cannotPin(thread, cpu, e):
            return "cannot pin thread \(thread) to CPU \(cpu): \(String(cString: strerror(e))) (errno \(e))"
        }
    }
}

/// The words a group's threads share. A trivial struct of one pointer: every thread gets a copy,
/// with no reference counting in the loops that read it.
public struct GroupControl: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutableRawPointer
    public let threadCount: Int
    @usableFromInline static let fixedBlocks = 4
    @usableFromInline static let block = 128

    init(threadCount: Int) {
        self.threadCount = threadCount
        base = LabMemory().allocate(bytes: (Self.fixedBlocks + threadCount) * Self.block)
    }

    func deallocate() { LabMemory().deallocate(base, bytes: (Self.fixedBlocks + threadCount) * Self.block) }

    /// The phase word (`GroupPhase`).
    @inlinable public var phase: UnsafeMutablePointer<UInt32> { base.assumingMemoryBound(to: UInt32.self) }
    @usableFromInline var ready: UnsafeMutablePointer<UInt32> { (base + 128).assumingMemoryBound(to: UInt32.self) }
    @usableFromInline var finished: UnsafeMutablePointer<UInt32> { (base + 256).assumingMemoryBound(to: UInt32.self) }
    var failure: UnsafeMutablePointer<UInt64> { (base + 384).assumingMemoryBound(to: UInt64.self) }

    /// Thread `index`'s progress word (operations so far), written by that thread only.
    @inlinable public func progress(_ index: Int) -> UnsafeMutablePointer<UInt64> {
        (base + (Self.fixedBlocks &+ index) &* Self.block).assumingMemoryBound(to: UInt64.self)
    }

    /// The phase now, relaxed: what a thread checks once per iteration.
    @inlinable public func currentPhase() -> UInt32 { cshims_u32_load_relaxed(phase) }

    /// Arrives at the start barrier and waits (yielding, for oversubscribed runs) until the
    /// controller opens it; returns the phase it opened to (`GroupPhase.abort`: leave at once,
    /// publishing nothing; `GroupPhase.stop`: the run is already over, a thread descheduled for
    /// all of it does no work but still publishes its outcome).
    public func arriveAndWait() -> UInt32 {
        _ = cshims_u32_fetch_add_acq_rel(ready, 1)
        var now = cshims_u32_load_acquire(phase)
        while now == GroupPhase.barrier {
            sched_yield()
            now = cshims_u32_load_acquire(phase)
        }
        return now
    }

    /// Sum of every progress word.
    public func totalProgress() -> UInt64 {
        var sum: UInt64 = 0
        for i in 0..<threadCount { sum &+= cshims_u64_load_relaxed(progress(i)) }
        return sum
    }

    /// Records the first failure; later ones are dropped.
    func recordFailure(thread: Int, errno e: Int32) {
        var expected: UInt64 = 0
        _ = cshims_u64_cas_acq_rel(failure, &expected, UInt64(UInt32(bitPattern: e)) << 32 | UInt64(thread + 1))
    }
}

/// What a new thread runs: the body with its slot, retained across pthread_create.
final class ThreadStart {
    let slot: ThreadSlot
    let control: GroupControl
    let body: (ThreadSlot, GroupControl) -> Void
    init(slot: ThreadSlot, control: GroupControl, body: @escaping (ThreadSlot, GroupControl) -> Void) {
        self.slot = slot
        self.control = control
        self.body = body
    }
}

/// The C entry point of every group thread: pin, run the body, count the thread finished.
let threadEntry: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { arg in
    let start = Unmanaged<ThreadStart>.fromOpaque(arg!).takeRetainedValue()
    let control = start.control
    if let cpu = start.slot.cpu {
        let rc = cshims_pin_self_to_cpu(Int32(cpu))
        if rc != 0 {
            // Cannot run where the plan says: say so, and leave at the barrier with the others.
            control.recordFailure(thread: start.slot.index, errno: rc)
            _ = control.arriveAndWait()
            _ = cshims_u32_fetch_add_acq_rel(control.finished, 1)
            return nil
        }
    }
    start.body(start.slot, control)
    _ = cshims_u32_fetch_add_acq_rel(control.finished, 1)
    return nil
}

/// A group of threads, one per slot, and the controller's side of their shared words.
///
/// Life: `start` (spawn; every body makes its per-thread state, then calls `arriveAndWait`),
/// `waitUntilReady` (every thread at the barrier, or the failure), `setPhase` to open the barrier
/// and move through the phases, `waitForFinish` (the watchdog), then `join` and `deallocate`, or
/// `abandon` when the group hung.
public final class ThreadGroup {
    public let slots: [ThreadSlot]
    public let control: GroupControl
    private var handles: [pthread_t] = []
    private var abandoned = false
    /// Tests only: pretend pthread_create fails with EAGAIN for this thread index.
    var simulatedCreateFailure: Int? = nil

    /// A group of `slots.count` threads; thread i of the group is `slots[i]` and `slots[i].index`
    /// must be i (it indexes the progress board).
    public init(slots: [ThreadSlot]) {
        precondition(slots.enumerated().allSatisfy { $0.offset == $0.element.index }, "slot indices must be 0..<count")
        self.slots = slots
        control = GroupControl(threadCount: slots.count)
    }

    deinit {
        if !abandoned && handles.isEmpty { control.deallocate() }
    }

    /// Spawns one thread per slot running `body(slot, control)` after pinning it. Each body must
    /// call `control.arriveAndWait()` once, return at once if it gives `GroupPhase.abort`, and
    /// return when the phase is `GroupPhase.stop`.
    /// Throws `ThreadGroupError` if a thread cannot be created; the threads already started have
    /// then left and been joined.
    public func start(stackBytes: Int = 0, _ body: @escaping (ThreadSlot, GroupControl) -> Void) throws {
        precondition(handles.isEmpty, "a group starts once")
        handles.reserveCapacity(slots.count)
        for slot in slots {
            let start = ThreadStart(slot: slot, control: control, body: body)
            let arg = Unmanaged.passRetained(start).toOpaque()
            var handle = pthread_t()
            let rc = slot.index == simulatedCreateFailure ? EAGAIN : cshims_thread_start(&handle, threadEntry, arg, stackBytes)
            guard rc == 0 else {
                Unmanaged<ThreadStart>.fromOpaque(arg).release()
                stopAndJoin(started: handles.count)
                throw ThreadGroupError.cannotCreate(thread: slot.index, errno: rc)
            }
            handles.append(handle)
        }
    }

    /// Waits until every thread is at the start barrier. Throws `ThreadGroupError` if one could not
    /// be pinned; every thread has then left and been joined.
    public func waitUntilReady() throws {
        while cshims_u32_load_acquire(control.ready) < UInt32(slots.count) { usleep(200) }
        let failure = cshims_u64_load_acquire(control.failure)
        if failure != 0 {
            stopAndJoin(started: handles.count)
            let index = Int(failure & 0xFFFF_FFFF) - 1
            throw ThreadGroupError.cannotPin(thread: index, cpu: slots[index].cpu ?? -1,
                                             errno: Int32(bitPattern: UInt32(failure >> 32)))
        }
    }

    /// Aborts the threads already started (they leave at the barrier) and joins them.
    private func stopAndJoin(started: Int) {
        cshims_u32_store_release(control.phase, GroupPhase.abort)
        for h in handles.prefix(started) { pthread_join(h, nil) }
        handles.removeAll()
    }

    public func setPhase(_ phase: UInt32) { cshims_u32_store_release(control.phase, phase) }

    public var finishedCount: Int { Int(cshims_u32_load_acquire(control.finished)) }

    /// The watchdog: waits until `threads` threads (default: all) have finished. False if the
    /// progress board (plus the finished count) stood still for `stallTimeoutSeconds`: the group hung.
    public func waitForFinish(threads: Int? = nil, stallTimeoutSeconds: Double) -> Bool {
        let count = UInt32(threads ?? slots.count)
        var lastProgress = control.totalProgress()
        var lastChange = CycleClock.monotonicNanoseconds()
        var pollMicroseconds: UInt32 = 50
        while cshims_u32_load_acquire(control.finished) < count {
            usleep(pollMicroseconds)
            pollMicroseconds = min(pollMicroseconds * 2, 20_000)
            let now = CycleClock.monotonicNanoseconds()
            let p = control.totalProgress() &+ UInt64(cshims_u32_load_relaxed(control.finished))
            if p != lastProgress {
                lastProgress = p
                lastChange = now
            } else if Double(now &- lastChange) / 1e9 > stallTimeoutSeconds {
                return false
            }
        }
        return true
    }

    /// Watches a running group for up to `seconds`, every `pollMicroseconds`: returns early when
    /// `stopEarly()` says so, or with `stalled` when no thread made progress for
    /// `stallTimeoutSeconds`. Returns the nanoseconds watched.
    public func watch(seconds: Double, stallTimeoutSeconds: Double, pollMicroseconds: UInt32 = 5_000,
                      stopEarly: () -> Bool) -> (stalled: Bool, elapsedNanoseconds: UInt64) {
        let start = CycleClock.monotonicNanoseconds()
        let stallNanoseconds = UInt64(stallTimeoutSeconds * 1e9)
        let durationNanoseconds = UInt64(seconds * 1e9)
        var lastProgress = control.totalProgress()
        var lastChange = start
        var now = start
        while true {
            usleep(pollMicroseconds)
            now = CycleClock.monotonicNanoseconds()
            if stopEarly() || now &- start >= durationNanoseconds { return (false, now &- start) }
            let p = control.totalProgress()
            if p != lastProgress {
                lastProgress = p
                lastChange = now
            } else if now &- lastChange > stallNanoseconds {
                return (true, now &- start)
            }
        }
    }

    /// Joins every thread: only after `waitForFinish` returned true. The control block is freed
    /// with the group.
    public func join() {
        for h in handles { pthread_join(h, nil) }
        handles.removeAll()
    }

    /// A hung group: its threads still spin on memory the caller and the group own. Detach them
    /// and leave that memory alone for the rest of the process.
    public func abandon() {
        for h in handles { pthread_detach(h) }
        handles.removeAll()
        abandoned = true
    }
}
