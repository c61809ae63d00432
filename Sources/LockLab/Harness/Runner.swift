// The generic runner: T threads (a ThreadGroup), one lock, one workload, one specialised loop.
//
// Phases (the group's phase word): 0 wait at the start barrier, 1 warm-up, 2 measure, 3 stop.
// Threads read the phase with a relaxed load once per iteration. Each thread counts its own
// operations in registers and publishes progress every 256 operations for the watchdog.
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

/// How long a run lasts.
public enum RunLength: Sendable, Equatable {
    /// Warm up, then measure for a wall-clock time.
    case timed(warmupSeconds: Double, measureSeconds: Double)
    /// Every thread does exactly this many acquisitions (the validator's mode).
    case iterations(perThread: Int)
}

public struct RunConfig: Sendable {
    public var spec: LockSpec
    public var threads: [ThreadSlot]
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

    public init(spec: LockSpec, threads: [ThreadSlot], nodeCount: Int = 1,
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
    public var thread: ThreadSlot
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

public enum Harness {
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

    /// Measures one configuration of lock `L` with workload `W` and returns what every thread
    /// measured. `W` is consumed: its memory is freed when the run ends (unless the run hung).
    /// A thread that cannot be created or pinned ends the run as `failed`, with the reason.
    public static func measure<L: LockAlgorithm, W: Workload>(
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
        let group = ThreadGroup(slots: config.threads)
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

        do {
            try group.start { slot, control in
                threadBody(lock: lock, workload: workload, slot: slot, loop: loop, control: control,
                           guarded: guarded, out: outcomes + slot.index)
            }
            // Start barrier: every thread pinned, context made, waiting.
            try group.waitUntilReady()
        } catch let error as ThreadGroupError {
            // Every started thread has left at the barrier without publishing an outcome.
            outcomes.deallocate()
            lock.deallocate()
            workload.deallocate()
            config.memory.deallocate(UnsafeMutableRawPointer(guarded), bytes: 128)
            return RawRunResult(lock: L.descriptor.name, status: .failed, elapsedSeconds: 0, threads: [],
                                counter: 0, progressOps: 0, workloadCheck: true, failure: error.description)
        }

        var measureStart: UInt64 = 0
        var measureEnd: UInt64 = 0
        var hung = false
        switch config.length {
        case let .timed(warmup, measure):
            group.setPhase(GroupPhase.warmup)
            sleepSeconds(warmup)
            group.setPhase(GroupPhase.measure)
            measureStart = CycleClock.monotonicNanoseconds()
            sleepSeconds(measure)
            group.setPhase(GroupPhase.stop)
            measureEnd = CycleClock.monotonicNanoseconds()
            hung = !group.waitForFinish(stallTimeoutSeconds: config.stallTimeoutSeconds)
        case .iterations:
            measureStart = CycleClock.monotonicNanoseconds()
            group.setPhase(GroupPhase.measure)
            hung = !group.waitForFinish(stallTimeoutSeconds: config.stallTimeoutSeconds)
            measureEnd = CycleClock.monotonicNanoseconds()
        }

        if hung {
            // Threads still spin on memory we own: leave it (and them) alone rather than free it
            // under them. The caller records the run as hung.
            let progress = group.control.totalProgress()
            group.abandon()
            return RawRunResult(lock: L.descriptor.name, status: .hung, elapsedSeconds: 0, threads: [],
                                counter: 0, progressOps: progress, workloadCheck: true, failure: nil)
        }
        group.join()

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

        let elapsed = Double(measureEnd &- measureStart) / 1e9
        let status: RunStatus = (counter == total && workloadOK) ? .ok : .mutexViolation
        return RawRunResult(lock: L.descriptor.name, status: status, elapsedSeconds: elapsed, threads: threads,
                            counter: counter, progressOps: total, workloadCheck: workloadOK, failure: nil)
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
        lock: L, workload: W, slot: ThreadSlot, loop: LoopParameters, control: GroupControl,
        guarded: UnsafeMutablePointer<GuardedRecord>, out: UnsafeMutablePointer<ThreadOutcome>
    ) {
        // Pinned already (ThreadGroup): the context and the histogram are first touched here, on
        // the thread's node.
        let progress = control.progress(slot.index)
        var context = lock.makeContext(for: slot)
        var state = workload.makeThreadState(for: slot, seed: loop.seed)
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: loop.histogramMaxCycles,
                                          numberOfSignificantValueDigits: .three)
        var usageStart = cshims_thread_usage()
        var usageEnd = cshims_thread_usage()

        var phase = control.arriveAndWait()
        if phase == GroupPhase.stop {
            // The group could not start every thread: leave without an outcome.
            lock.freeContext(&context)
            return
        }
        if phase == GroupPhase.measure { _ = cshims_thread_usage_now(&usageStart) }
        if loop.faultHang && slot.index == 0 { hangHoldingTheLock(lock, &context) }

        let me = UInt64(slot.index + 1)
        let myNode = UInt64(slot.node)
        let sampleEvery = loop.sampleEvery
        let trylockEvery = loop.trylockEvery
        let limit = loop.opsLimit
        var ops: UInt64 = 0
        var opsAtMeasureStart: UInt64 = phase == GroupPhase.measure ? 0 : .max
        var handovers: UInt64 = 0
        var sameNode: UInt64 = 0
        var sampleCountdown = sampleEvery == 0 ? UInt64.max : sampleEvery
        var trylockCountdown = trylockEvery == 0 ? UInt64.max : trylockEvery

        while ops < limit {
            let now = cshims_u32_load_relaxed(control.phase)
            if now != phase {
                phase = now
                if phase == GroupPhase.stop { break }
                if phase == GroupPhase.measure {
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
            thread: slot,
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
