// The generic runner: T pinned threads, one lock, one workload, one specialised loop.
//
// Phases (the control word): 0 wait at the start barrier, 1 warm-up, 2 measure, 3 stop. Threads
// read the phase with a relaxed load once per iteration (its line is written three times per run,
// so it stays shared in every cache). Each thread counts its own operations in registers and
// publishes progress every `progressInterval` operations for the watchdog.
//
// Per iteration, in order: [sampled: read the cycle counter] acquire [sampled: read it again]
// plain counter += 1; handover bookkeeping; workload's critical section; release; [sampled: record
// the acquire latency into the thread's histogram]; workload's outside section.
//
// Nothing in the loop allocates, retains or calls through an existential: `run` is generic over the
// lock and the workload, and is entered through `LockEntry`, which is built with concrete types.

import CShims
import Foundation
import Histogram

/// One thread of a run: its index, where it runs, and its NUMA node (real or virtual).
public struct HarnessThread: Sendable, Equatable {
    public let index: Int
    /// The CPU to pin to, or nil to leave the thread unpinned.
    public let cpu: Int?
    public let node: Int
    public init(index: Int, cpu: Int?, node: Int) {
        self.index = index
        self.cpu = cpu
        self.node = node
    }
}

/// How long a run lasts.
public enum RunLength: Sendable, Equatable {
    /// Warm up, then measure for a wall-clock time.
    case timed(warmupSeconds: Double, measureSeconds: Double)
    /// Every thread does exactly this many acquisitions (the validator's mode).
    case iterations(perThread: Int)
}

public struct RunConfig: Sendable {
    public var spec: LockSpec
    public var threads: [HarnessThread]
    /// NUMA nodes of the run; thread node ids are below this.
    public var nodeCount: Int
    public var length: RunLength
    /// Time every Kth acquisition of each thread (0: none).
    public var sampleEvery: Int
    /// Make every Kth acquisition a trylock spin (0: never; ignored if the lock has no trylock).
    public var trylockEvery: Int
    /// Where the lock and the shared data go.
    public var memory: LabMemory
    public var seed: UInt64
    /// A run whose threads make no progress for this long is declared hung.
    public var stallTimeoutSeconds: Double

    public init(spec: LockSpec, threads: [HarnessThread], nodeCount: Int = 1,
                length: RunLength = .timed(warmupSeconds: 0.2, measureSeconds: 1),
                sampleEvery: Int = Harness.defaultSampleEvery, trylockEvery: Int = 0,
                memory: LabMemory = LabMemory(), seed: UInt64 = 1, stallTimeoutSeconds: Double = 30) {
        self.spec = spec
        self.threads = threads
        self.nodeCount = nodeCount
        self.length = length
        self.sampleEvery = sampleEvery
        self.trylockEvery = trylockEvery
        self.memory = memory
        self.seed = seed
        self.stallTimeoutSeconds = stallTimeoutSeconds
    }
}

/// The words every thread reads or writes, each on its own 128-byte block.
@usableFromInline
struct ControlBlock {
    @usableFromInline let base: UnsafeMutableRawPointer
    static let bytes = 3 * 128

    init() {
        base = LabMemory().allocate(bytes: Self.bytes)
    }

    /// 0 barrier, 1 warm-up, 2 measure, 3 stop.
    @usableFromInline var phase: UnsafeMutablePointer<UInt32> { (base + 0).assumingMemoryBound(to: UInt32.self) }
    /// Threads that reached the start barrier.
    @usableFromInline var ready: UnsafeMutablePointer<UInt32> { (base + 128).assumingMemoryBound(to: UInt32.self) }
    /// Threads that left the loop and published their outcome.
    @usableFromInline var finished: UnsafeMutablePointer<UInt32> { (base + 256).assumingMemoryBound(to: UInt32.self) }

    func deallocate() { LabMemory().deallocate(base, bytes: Self.bytes) }
}

@usableFromInline enum Phase {
    @usableFromInline static let barrier: UInt32 = 0
    @usableFromInline static let warmup: UInt32 = 1
    @usableFromInline static let measure: UInt32 = 2
    @usableFromInline static let stop: UInt32 = 3
}

/// Data only the lock holder touches, on its own block: the plain (non-atomic) counter that must
/// equal the number of acquisitions, and the previous holder's thread (index + 1) and node.
@usableFromInline
struct GuardedRecord {
    @usableFromInline var counter: UInt64
    @usableFromInline var lastHolder: UInt64
    @usableFromInline var lastNode: UInt64
}

/// What one thread measured.
public struct ThreadOutcome {
    public var thread: HarnessThread
    /// Acquisitions in the measured phase.
    public var measuredOps: UInt64
    /// Acquisitions over the whole run (warm-up included): what the counter check adds up.
    public var totalOps: UInt64
    /// Acquisitions (measured phase) where the previous holder was another thread.
    public var handoversIn: UInt64
    /// ... and that thread was on this thread's node.
    public var sameNodeHandoversIn: UInt64
    /// Sampled acquire latencies, in cycles (measured phase).
    public var latencyCycles: Histogram<UInt64>
    /// CPU time and context switches of the measured phase.
    public var userNanoseconds: UInt64
    public var systemNanoseconds: UInt64
    public var voluntarySwitches: UInt64
    public var involuntarySwitches: UInt64
    /// The CPU the thread was on when it finished (checks pinning).
    public var lastCPU: Int
}

/// The per-thread progress words the watchdog reads, one 128-byte block each.
@usableFromInline
struct ProgressBoard {
    @usableFromInline let base: UnsafeMutableRawPointer
    let count: Int
    init(count: Int) {
        self.count = count
        base = LabMemory().allocate(bytes: count * 128)
    }
    @usableFromInline func slot(_ i: Int) -> UnsafeMutablePointer<UInt64> {
        (base + i &* 128).assumingMemoryBound(to: UInt64.self)
    }
    func total() -> UInt64 {
        var s: UInt64 = 0
        for i in 0..<count { s &+= cshims_u64_load_relaxed(slot(i)) }
        return s
    }
    func deallocate() { LabMemory().deallocate(base, bytes: count * 128) }
}

final class ThreadStart {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// The C entry point of every harness and torture thread: runs a retained `ThreadStart`.
let threadEntry: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { arg in
    let start = Unmanaged<ThreadStart>.fromOpaque(arg!).takeRetainedValue()
    start.body()
    return nil
}

public enum Harness {
    /// Most threads one run may have (`--threads`, experiment files, torture): beyond any machine's
    /// oversubscription experiments, and small enough that a typo fails at once instead of
    /// planning or starting a hundred million threads.
    public static let maxThreads = 8192
    /// Default latency sampling: every 64th acquisition of each thread.
    public static let defaultSampleEvery = 64
    /// Threads publish their op count for the watchdog this often (a power of two).
    @usableFromInline static let progressMask: UInt64 = 255
    /// Largest latency the histograms track, in cycles (about a minute at 5 GHz).
    static let histogramMaxCycles: UInt64 = 300_000_000_000

    /// Fault injection for the watchdog's tests: `LOCKLAB_FAULT_HANG=<lock name>` in the environment
    /// makes every run (and torture) of that lock hang: its thread 0 takes the lock before its first
    /// iteration and never lets go. So a real sweep process can be shown to record the run as hung
    /// and go on, and `torture` to fail. Read once per process; unset (the default), nothing
    /// changes. The check happens once per thread, before the measured loop.
    public static let faultHangLock: String? = {
        guard let name = ProcessInfo.processInfo.environment["LOCKLAB_FAULT_HANG"], !name.isEmpty else { return nil }
        return name
    }()

    /// Runs one configuration of lock `L` with workload `W` and returns what every thread measured.
    /// `W` is consumed: its memory is freed when the run ends (unless the run hung).
    public static func run<L: LockAlgorithm, W: Workload>(
        _ lockType: L.Type, workload: W, config: RunConfig
    ) throws -> RawRunResult {
        let threadCount = config.threads.count
        precondition(threadCount > 0)
        if let maxThreads = L.descriptor.maxThreads, threadCount > maxThreads {
            throw LockError.tooManyThreads(lock: L.descriptor.name, threads: threadCount, max: maxThreads)
        }
        let environment = LockEnvironment(maxThreads: threadCount, nodeCount: config.nodeCount,
                                          memory: config.memory, options: config.spec.options)
        let lock = try L(environment)
        let control = ControlBlock()
        let progress = ProgressBoard(count: threadCount)
        let guarded = config.memory.allocate(bytes: 128).bindMemory(to: GuardedRecord.self, capacity: 1)
        let outcomes = UnsafeMutablePointer<ThreadOutcome>.allocate(capacity: threadCount)

        let opsLimit: UInt64
        switch config.length {
        case .timed: opsLimit = .max
        case let .iterations(n): opsLimit = UInt64(max(0, n))
        }
        let loop = LoopParameters(
            sampleEvery: UInt64(max(0, config.sampleEvery)),
            trylockEvery: L.descriptor.supportsTryLock ? UInt64(max(0, config.trylockEvery)) : 0,
            opsLimit: opsLimit, seed: config.seed,
            histogramMaxCycles: histogramMaxCycles,
            faultHang: faultHangLock == L.descriptor.name)

        var handles = [pthread_t]()
        handles.reserveCapacity(threadCount)
        for thread in config.threads {
            let slot = ThreadSlot(index: thread.index, cpu: thread.cpu ?? -1, node: thread.node)
            let out = outcomes + thread.index
            let start = ThreadStart {
                threadBody(lock: lock, workload: workload, slot: slot, pin: thread.cpu != nil,
                           loop: loop, control: control, progress: progress.slot(thread.index),
                           guarded: guarded, out: out)
            }
            var handle = pthread_t()
            let rc = cshims_thread_start(&handle, threadEntry, Unmanaged.passRetained(start).toOpaque(), 0)
            guard rc == 0 else { fatalError("pthread_create failed: errno \(rc)") }
            handles.append(handle)
        }

        // Start barrier: every thread pinned, context made, waiting.
        while cshims_u32_load_acquire(control.ready) < UInt32(threadCount) { usleep(200) }

        var measureStart: UInt64 = 0
        var measureEnd: UInt64 = 0
        var hung = false
        switch config.length {
        case let .timed(warmup, measure):
            cshims_u32_store_release(control.phase, Phase.warmup)
            sleepSeconds(warmup)
            cshims_u32_store_release(control.phase, Phase.measure)
            measureStart = CycleClock.monotonicNanoseconds()
            sleepSeconds(measure)
            cshims_u32_store_release(control.phase, Phase.stop)
            measureEnd = CycleClock.monotonicNanoseconds()
            hung = !waitForThreads(control: control, progress: progress, count: threadCount,
                                   stallTimeout: config.stallTimeoutSeconds)
        case .iterations:
            measureStart = CycleClock.monotonicNanoseconds()
            cshims_u32_store_release(control.phase, Phase.measure)
            hung = !waitForThreads(control: control, progress: progress, count: threadCount,
                                   stallTimeout: config.stallTimeoutSeconds)
            measureEnd = CycleClock.monotonicNanoseconds()
        }

        if hung {
            // Threads still spin on memory we own: leave it (and them) alone rather than free it
            // under them. The caller records the run as hung.
            for h in handles { pthread_detach(h) }
            return RawRunResult(lock: L.descriptor.name, status: .hung, elapsedSeconds: 0, threads: [],
                                counter: 0, progressOps: progress.total(), workloadCheck: true)
        }
        for h in handles { pthread_join(h, nil) }

        var threads: [ThreadOutcome] = []
        threads.reserveCapacity(threadCount)
        for i in 0..<threadCount { threads.append((outcomes + i).move()) }
        outcomes.deallocate()
        let counter = guarded.pointee.counter
        let total = threads.reduce(UInt64(0)) { $0 &+ $1.totalOps }
        let workloadOK = workload.verify(acquisitions: total)
        lock.deallocate()
        workload.deallocate()
        config.memory.deallocate(UnsafeMutableRawPointer(guarded), bytes: 128)
        control.deallocate()
        progress.deallocate()

        let elapsed = Double(measureEnd &- measureStart) / 1e9
        let status: RunStatus = (counter == total && workloadOK) ? .ok : .mutexViolation
        return RawRunResult(lock: L.descriptor.name, status: status, elapsedSeconds: elapsed, threads: threads,
                            counter: counter, progressOps: total, workloadCheck: workloadOK)
    }

    /// Waits until every thread finished. False if the total progress stalled for `stallTimeout`.
    static func waitForThreads(control: ControlBlock, progress: ProgressBoard, count: Int,
                               stallTimeout: Double) -> Bool {
        var lastProgress = progress.total()
        var lastChange = CycleClock.monotonicNanoseconds()
        var pollMicroseconds: UInt32 = 50
        while cshims_u32_load_acquire(control.finished) < UInt32(count) {
            usleep(pollMicroseconds)
            pollMicroseconds = min(pollMicroseconds * 2, 20_000)
            let now = CycleClock.monotonicNanoseconds()
            let p = progress.total() &+ UInt64(cshims_u32_load_relaxed(control.finished))
            if p != lastProgress {
                lastProgress = p
                lastChange = now
            } else if Double(now &- lastChange) / 1e9 > stallTimeout {
                return false
            }
        }
        return true
    }

    static func sleepSeconds(_ s: Double) {
        guard s > 0 else { return }
        var ts = timespec(tv_sec: Int(s), tv_nsec: Int((s - Double(Int(s))) * 1e9))
        var rem = timespec()
        while nanosleep(&ts, &rem) != 0 && errno == EINTR { ts = rem }
    }
}

@usableFromInline
struct LoopParameters: Sendable {
    @usableFromInline let sampleEvery: UInt64
    @usableFromInline let trylockEvery: UInt64
    @usableFromInline let opsLimit: UInt64
    @usableFromInline let seed: UInt64
    @usableFromInline let histogramMaxCycles: UInt64
    /// Injected fault (`Harness.faultHangLock`): thread 0 holds the lock forever.
    @usableFromInline let faultHang: Bool
}

extension Harness {
    /// One thread's whole life. Specialised per (L, W): the loop below is the measured code.
    @inline(never)
    static func threadBody<L: LockAlgorithm, W: Workload>(
        lock: L, workload: W, slot: ThreadSlot, pin: Bool, loop: LoopParameters,
        control: ControlBlock, progress: UnsafeMutablePointer<UInt64>,
        guarded: UnsafeMutablePointer<GuardedRecord>, out: UnsafeMutablePointer<ThreadOutcome>
    ) {
        if pin {
            let rc = cshims_pin_self_to_cpu(Int32(slot.cpu))
            if rc != 0 { fatalError("cannot pin thread \(slot.index) to CPU \(slot.cpu): errno \(rc)") }
        }
        var context = lock.makeContext(for: slot)
        var state = workload.makeThreadState(for: slot, seed: loop.seed)
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: loop.histogramMaxCycles,
                                          numberOfSignificantValueDigits: .three)
        var usageStart = cshims_thread_usage()
        var usageEnd = cshims_thread_usage()

        _ = cshims_u32_fetch_add_acq_rel(control.ready, 1)
        var phase = cshims_u32_load_acquire(control.phase)
        while phase == Phase.barrier {
            sched_yield() // oversubscribed runs: let the other threads reach the barrier
            phase = cshims_u32_load_acquire(control.phase)
        }
        if phase == Phase.measure { _ = cshims_thread_usage_now(&usageStart) }
        if loop.faultHang && slot.index == 0 { hangHoldingTheLock(lock, &context) }

        let me = UInt64(slot.index + 1)
        let myNode = UInt64(slot.node)
        let sampleEvery = loop.sampleEvery
        let trylockEvery = loop.trylockEvery
        let limit = loop.opsLimit
        var ops: UInt64 = 0
        var opsAtMeasureStart: UInt64 = phase == Phase.measure ? 0 : .max
        var handovers: UInt64 = 0
        var sameNode: UInt64 = 0
        var sampleCountdown = sampleEvery == 0 ? UInt64.max : sampleEvery
        var trylockCountdown = trylockEvery == 0 ? UInt64.max : trylockEvery

        while ops < limit {
            let now = cshims_u32_load_relaxed(control.phase)
            if now != phase {
                phase = now
                if phase == Phase.stop { break }
                if phase == Phase.measure {
                    // Warm-up is over: measure from here.
                    opsAtMeasureStart = ops
                    handovers = 0
                    sameNode = 0
                    histogram.reset()
                    _ = cshims_thread_usage_now(&usageStart)
                }
            }
            // Every Kth iteration is timed, every Jth a trylock: both out of line, so the common
            // iteration below stays small (the countdowns start at .max when off: never zero).
            sampleCountdown &-= 1
            trylockCountdown &-= 1
            let entry: CriticalEntry
            if sampleCountdown == 0 || trylockCountdown == 0 {
                let timed = sampleCountdown == 0
                let useTrylock = trylockCountdown == 0
                if timed { sampleCountdown = sampleEvery }
                if useTrylock { trylockCountdown = trylockEvery }
                entry = specialIteration(lock: lock, context: &context, timed: timed, trylock: useTrylock,
                                         guarded: guarded, me: me, myNode: myNode, workload: workload,
                                         state: &state, histogram: &histogram)
            } else {
                // The critical section returns what it saw; the counting happens out here, in
                // registers (no variable of this loop is captured by reference).
                entry = lock.withLock(&context) {
                    criticalSection(guarded: guarded, me: me, myNode: myNode, timed: false,
                                    workload: workload, state: &state)
                }
            }
            handovers &+= entry.handover
            sameNode &+= entry.sameNode
            ops &+= 1
            if ops & Harness.progressMask == 0 { cshims_u64_store_relaxed(progress, ops) }
            workload.outsideCriticalSection(&state)
            // Keeps the optimiser from merging iterations of lock-free (no-lock) loops.
            cshims_compiler_barrier()
        }
        _ = cshims_thread_usage_now(&usageEnd)
        cshims_u64_store_relaxed(progress, ops)
        if opsAtMeasureStart == .max {
            // Never saw the measure phase (stopped before it began, or waited through all of it, as
            // a culled malthusian thread does): nothing of its warm-up belongs in the measurement.
            opsAtMeasureStart = ops
            handovers = 0
            sameNode = 0
            histogram.reset()
        }

        out.initialize(to: ThreadOutcome(
            thread: HarnessThread(index: slot.index, cpu: pin ? slot.cpu : nil, node: slot.node),
            measuredOps: ops &- opsAtMeasureStart,
            totalOps: ops,
            handoversIn: handovers,
            sameNodeHandoversIn: sameNode,
            latencyCycles: histogram,
            userNanoseconds: usageEnd.user_ns &- usageStart.user_ns,
            systemNanoseconds: usageEnd.sys_ns &- usageStart.sys_ns,
            voluntarySwitches: usageEnd.voluntary_switches &- usageStart.voluntary_switches,
            involuntarySwitches: usageEnd.involuntary_switches &- usageStart.involuntary_switches,
            lastCPU: Int(cshims_current_cpu())))
        lock.freeContext(&context)
        _ = cshims_u32_fetch_add_acq_rel(control.finished, 1)
    }

    /// A timed and/or trylock iteration: the rare kind, kept out of the common loop body.
    @inline(never)
    static func specialIteration<L: LockAlgorithm, W: Workload>(
        lock: L, context: inout L.Context, timed: Bool, trylock: Bool,
        guarded: UnsafeMutablePointer<GuardedRecord>, me: UInt64, myNode: UInt64,
        workload: W, state: inout W.ThreadState, histogram: inout Histogram<UInt64>
    ) -> CriticalEntry {
        let acquireStart: UInt64 = timed ? cshims_cycles() : 0
        let entry: CriticalEntry
        if trylock {
            while !lock.tryLock(&context) { cshims_pause() }
            entry = criticalSection(guarded: guarded, me: me, myNode: myNode, timed: timed,
                                    workload: workload, state: &state)
            lock.unlock(&context)
        } else {
            entry = lock.withLock(&context) {
                criticalSection(guarded: guarded, me: me, myNode: myNode, timed: timed,
                                workload: workload, state: &state)
            }
        }
        if timed { _ = histogram.record(entry.acquiredAt &- acquireStart) }
        return entry
    }

    /// The injected hang: take the lock and never release it (sleeping, so it costs no CPU); the
    /// other threads wait in the lock and the watchdog sees no progress.
    @inline(never)
    static func hangHoldingTheLock<L: LockAlgorithm>(_ lock: L, _ context: inout L.Context) -> Never {
        lock.withLock(&context) {
            while true { sleep(3600) }
        }
    }

    /// What a critical section reports: whether the lock came from another thread, from this
    /// thread's node, and when it was entered (timed iterations only).
    @usableFromInline
    struct CriticalEntry {
        @usableFromInline var handover: UInt64
        @usableFromInline var sameNode: UInt64
        @usableFromInline var acquiredAt: UInt64
    }

    /// The harness's part of every critical section, then the workload's.
    @inline(__always)
    static func criticalSection<W: Workload>(
        guarded: UnsafeMutablePointer<GuardedRecord>, me: UInt64, myNode: UInt64, timed: Bool,
        workload: W, state: inout W.ThreadState
    ) -> CriticalEntry {
        var entry = CriticalEntry(handover: 0, sameNode: 0, acquiredAt: timed ? cshims_cycles() : 0)
        // Plain, non-atomic: any overlap of two critical sections loses an increment.
        guarded.pointee.counter &+= 1
        let previous = guarded.pointee.lastHolder
        if previous != me {
            if previous != 0 {
                entry.handover = 1
                entry.sameNode = guarded.pointee.lastNode == myNode ? 1 : 0
            }
            guarded.pointee.lastHolder = me
            guarded.pointee.lastNode = myNode
        }
        workload.criticalSection(&state)
        return entry
    }
}
