// Lock torture, in the spirit of Linux's locktorture (kernel/locking/locktorture.c).
//
// Unpinned threads (by default twice the CPUs, so that the scheduler preempts them anywhere, lock
// holders included) hammer one lock for a wall-clock time with a random mix of its entry points:
// lock/unlock, a single tryLock (where the lock offers it) and withLock (the only entry point of a
// lock with splitLockUnlock == false). Holds and gaps are random: mostly empty or a short spin, now
// and then a sched_yield, and rarely a usleep with the lock held, which takes the holder off its CPU
// while the waiters keep trying: the case a lock most easily gets wrong. Thread i is on node
// i mod nodeCount (a label: NUMA-aware locks take their node paths; nothing is pinned).
//
// Checks, each reported the moment it fails:
//  - the owner word: a holder finds it 0 on entry, writes its thread number, finds that number still
//    there after its hold and clears it on exit. Anything else is two threads inside at once. The
//    word is read and written with relaxed atomics, which add no ordering the lock does not give.
//  - the plain counter: a plain read-modify-write in every critical section; at the end it must
//    equal the acquisitions (an overlap the owner word missed still loses an update).
//  - progress: no acquisition by any thread for `stallTimeoutSeconds` is a hang (deadlock, lost
//    wake-up). Its threads are abandoned with their memory, as the harness does with a hung run.
// Generic over the lock and entered through LockEntry, so each lock runs its own specialised loop.

import CShims
import Foundation

/// How often each kind of entry point, hold and gap comes up, as 1-in-N chances (N >= 1).
public struct TortureMix: Sendable, Equatable {
    /// 1 in N acquisitions is a single tryLock (locks that offer it); a failed one is not retried.
    public var trylockEvery: UInt64 = 4
    /// 1 in N of the other acquisitions goes through withLock (all of them for a lock without
    /// separate lock and unlock).
    public var withLockEvery: UInt64 = 8
    /// 1 in N critical sections sleeps with the lock held, for `sleepMicroseconds`.
    public var sleepHoldEvery: UInt64 = 256
    public var sleepMicroseconds: ClosedRange<UInt32> = 20...200
    /// 1 in N critical sections yields the CPU with the lock held.
    public var yieldHoldEvery: UInt64 = 32
    /// 1 in N critical sections spins a little (up to 255 pauses) with the lock held.
    public var spinHoldEvery: UInt64 = 4
    /// 1 in N gaps between acquisitions yields the CPU; otherwise half spin up to 511 pauses.
    public var yieldGapEvery: UInt64 = 64

    public init() {}
}

public struct TortureConfig: Sendable {
    public var spec: LockSpec
    /// Threads, unpinned. A lock with a thread limit (`no-lock`: 1) gets at most that many.
    public var threads: Int
    /// Node labels: thread i is on node i mod nodeCount.
    public var nodeCount: Int
    public var durationSeconds: Double
    public var seed: UInt64
    /// No acquisition by any thread for this long is a hang.
    public var stallTimeoutSeconds: Double
    public var mix: TortureMix

    public init(spec: LockSpec, threads: Int, nodeCount: Int = 2, durationSeconds: Double, seed: UInt64 = 1,
                stallTimeoutSeconds: Double = 10, mix: TortureMix = TortureMix()) {
        self.spec = spec
        self.threads = threads
        self.nodeCount = nodeCount
        self.durationSeconds = durationSeconds
        self.seed = seed
        self.stallTimeoutSeconds = stallTimeoutSeconds
        self.mix = mix
    }
}

public enum TortureVerdict: Sendable, Equatable {
    case passed
    /// Two threads inside the critical section at once, or lost updates: what was seen.
    case violation(String)
    /// No acquisition for the stall timeout: what was seen.
    case hung(String)

    public var passed: Bool { self == .passed }

    /// The one line a failure is reported with (empty when passed).
    public var message: String {
        switch self {
        case .passed: return ""
        case let .violation(what): return "mutual exclusion violated: \(what)"
        case let .hung(what): return "hung: \(what)"
        }
    }
}

public struct TortureResult: Sendable {
    /// The lock as given (with explicit options).
    public let lock: String
    public let threads: Int
    public let verdict: TortureVerdict
    /// Seconds the threads ran (until the duration, the first violation or the hang).
    public let elapsedSeconds: Double
    /// Critical sections entered, by any entry point.
    public let acquisitions: UInt64
    public let lockCalls: UInt64
    public let withLockCalls: UInt64
    public let trylockAttempts: UInt64
    public let trylockSuccesses: UInt64
    /// Critical sections that slept or yielded with the lock held.
    public let sleepsHolding: UInt64
    public let yieldsHolding: UInt64
    /// The plain counter at the end (equals `acquisitions` unless updates were lost).
    public let counter: UInt64
    public let minThreadAcquisitions: UInt64
    public let maxThreadAcquisitions: UInt64
}

/// One thread's tallies, kept in registers and written once at the end.
struct TortureCounts {
    var acquisitions: UInt64 = 0
    var lockCalls: UInt64 = 0
    var withLockCalls: UInt64 = 0
    var trylockAttempts: UInt64 = 0
    var trylockSuccesses: UInt64 = 0
    var sleepsHolding: UInt64 = 0
    var yieldsHolding: UInt64 = 0
}

/// The words the torture threads share besides the group's (phase, barrier, progress), each on
/// its own 128-byte block.
@usableFromInline
struct TortureShared {
    @usableFromInline let base: UnsafeMutableRawPointer
    static let bytes = 3 * 128

    init() { base = LabMemory().allocate(bytes: Self.bytes) }

    /// The first violation seen (`TortureViolation.code`), 0 while none.
    @usableFromInline var violation: UnsafeMutablePointer<UInt64> { (base + 0).assumingMemoryBound(to: UInt64.self) }
    /// The owner word: 0 or the holder's thread index + 1.
    @usableFromInline var owner: UnsafeMutablePointer<UInt64> { (base + 128).assumingMemoryBound(to: UInt64.self) }
    /// The plain counter: only ever touched with a plain read-modify-write, lock held.
    @usableFromInline var counter: UnsafeMutablePointer<UInt64> { (base + 256).assumingMemoryBound(to: UInt64.self) }

    func deallocate() { LabMemory().deallocate(base, bytes: Self.bytes) }
}

/// How a thread entered the critical section (named in violation reports).
@usableFromInline enum TortureEntry: UInt8 {
    case lock = 1, tryLock, withLock, execute
    var name: String {
        switch self {
        case .lock: return "lock()"
        case .tryLock: return "tryLock()"
        case .withLock: return "withLock()"
        case .execute: return "an operation it applied"
        }
    }
}

/// What a thread does while it holds the lock.
@usableFromInline enum TortureHold {
    case none
    case spin(UInt64)
    case yield
    case sleep(UInt32)
}

/// A violation packed into one word so that the first one wins a single CAS:
/// kind (bits 56-63), entry point (48-55), detecting thread + 1 (32-47), other thread + 1 (0-31).
@usableFromInline enum TortureViolation {
    /// The owner word was not 0 on entry: someone else was inside.
    @usableFromInline static let enteredWhileHeld: UInt64 = 1
    /// The owner word changed during the hold: someone came in behind us.
    @usableFromInline static let intruderDuringHold: UInt64 = 2
    /// A client got back another result than its operation's (an executor lost or misrouted a
    /// response): `thread` is the client, `other` the sequence number of its operation.
    @usableFromInline static let wrongResponse: UInt64 = 3

    @usableFromInline
    static func code(kind: UInt64, entry: TortureEntry, thread: UInt64, other: UInt64) -> UInt64 {
        kind << 56 | UInt64(entry.rawValue) << 48 | (thread & 0xFFFF) << 32 | (other & 0xFFFF_FFFF)
    }

    static func describe(_ code: UInt64) -> String {
        let kind = code >> 56
        let entry = TortureEntry(rawValue: UInt8(truncatingIfNeeded: code >> 48))?.name ?? "?"
        let thread = (code >> 32) & 0xFFFF
        let other = code & 0xFFFF_FFFF
        let otherText = other == 0 ? "nobody (the owner word was cleared)" : "thread \(other - 1)"
        if kind == wrongResponse {
            return "thread \(thread - 1) got back another result than its operation \(other)'s: a response was lost or misrouted"
        }
        if kind == enteredWhileHeld {
            return "thread \(thread - 1) entered the critical section by \(entry) while thread \(other - 1) held the lock"
        }
        return "thread \(thread - 1) (in by \(entry)) found \(otherText) in the owner word before leaving its critical section"
    }
}

public enum Torture {
    /// Tortures lock `L` as `config` says; see the file header.
    public static func run<L: LockAlgorithm>(_ lockType: L.Type, config: TortureConfig) throws -> TortureResult {
        let descriptor = L.descriptor
        let threadCount = max(1, min(config.threads, descriptor.maxThreads ?? .max))
        // The lock as given; a type run under another lock's spec (tests) goes by its own name.
        let label = config.spec.name == descriptor.name ? config.spec.label : descriptor.name
        let mix = config.mix
        precondition(mix.trylockEvery >= 1 && mix.withLockEvery >= 1 && mix.sleepHoldEvery >= 1
                     && mix.yieldHoldEvery >= 1 && mix.spinHoldEvery >= 1 && mix.yieldGapEvery >= 1,
                     "torture mix: every 1-in-N chance needs N >= 1")
        let nodeCount = max(1, config.nodeCount)
        let lock = try L(LockEnvironment(maxThreads: threadCount, nodeCount: nodeCount, options: config.spec.options))
        let shared = TortureShared()
        let outcomes = UnsafeMutablePointer<TortureCounts>.allocate(capacity: threadCount)
        let parameters = TortureParameters(
            mix: mix, seed: config.seed,
            canSplit: descriptor.splitLockUnlock,
            canTry: descriptor.supportsTryLock && descriptor.splitLockUnlock,
            faultHang: Harness.faultHangLock == descriptor.name)

        // Unpinned threads; thread i on node i mod nodeCount.
        let group = ThreadGroup(slots: (0..<threadCount).map { ThreadSlot(index: $0, cpu: nil, node: $0 % nodeCount) })
        do {
            try group.start { slot, control in
                tortureThread(lock: lock, slot: slot, parameters: parameters, control: control, shared: shared,
                              out: outcomes + slot.index)
            }
            try group.waitUntilReady()
        } catch let error as ThreadGroupError {
            outcomes.deallocate()
            lock.deallocate()
            shared.deallocate()
            throw LockError.unsupported("torture \(label): \(error.description)")
        }

        group.setPhase(GroupPhase.measure)
        let (stalled, elapsedNanoseconds) = group.watch(
            seconds: config.durationSeconds, stallTimeoutSeconds: config.stallTimeoutSeconds,
            stopEarly: { cshims_u64_load_acquire(shared.violation) != 0 })
        group.setPhase(GroupPhase.stop)
        let elapsed = Double(elapsedNanoseconds) / 1e9

        // Threads finish their current acquisition and leave. A thread stuck in the lock makes no
        // progress: give up after the stall timeout (one second if the run already stalled).
        let finished = group.waitForFinish(
            stallTimeoutSeconds: stalled ? min(config.stallTimeoutSeconds, 1) : config.stallTimeoutSeconds)
        let violationCode = cshims_u64_load_acquire(shared.violation)
        if !finished {
            // Threads still spin on memory we own: leave it (and them) alone.
            let done = group.finishedCount
            let progress = group.control.totalProgress()
            group.abandon()
            let stuck = "\(threadCount - done) of \(threadCount) threads stuck"
            let verdict: TortureVerdict
            if violationCode != 0 {
                verdict = .violation(TortureViolation.describe(violationCode) + " (then \(stuck) in the lock)")
            } else if stalled {
                verdict = .hung("no acquisition for \(formatSeconds(config.stallTimeoutSeconds)) s after \(progress) acquisitions; \(stuck)")
            } else {
                verdict = .hung("\(stuck) in the lock after the run was told to stop")
            }
            return TortureResult(lock: label, threads: threadCount, verdict: verdict, elapsedSeconds: elapsed,
                                 acquisitions: progress, lockCalls: 0, withLockCalls: 0, trylockAttempts: 0,
                                 trylockSuccesses: 0, sleepsHolding: 0, yieldsHolding: 0, counter: shared.counter.pointee,
                                 minThreadAcquisitions: 0, maxThreadAcquisitions: 0)
        }
        group.join()

        var total = TortureCounts()
        var minimum = UInt64.max
        var maximum: UInt64 = 0
        for i in 0..<threadCount {
            let c = (outcomes + i).move()
            total.acquisitions &+= c.acquisitions
            total.lockCalls &+= c.lockCalls
            total.withLockCalls &+= c.withLockCalls
            total.trylockAttempts &+= c.trylockAttempts
            total.trylockSuccesses &+= c.trylockSuccesses
            total.sleepsHolding &+= c.sleepsHolding
            total.yieldsHolding &+= c.yieldsHolding
            minimum = min(minimum, c.acquisitions)
            maximum = max(maximum, c.acquisitions)
        }
        outcomes.deallocate()
        let counter = shared.counter.pointee
        lock.deallocate()
        shared.deallocate()

        let verdict: TortureVerdict
        if violationCode != 0 {
            verdict = .violation(TortureViolation.describe(violationCode))
        } else if counter != total.acquisitions {
            verdict = .violation("lost updates: the plain counter is \(counter) after \(total.acquisitions) acquisitions")
        } else if stalled {
            verdict = .hung("no acquisition for \(formatSeconds(config.stallTimeoutSeconds)) s after \(total.acquisitions) acquisitions")
        } else {
            verdict = .passed
        }
        return TortureResult(lock: label, threads: threadCount, verdict: verdict, elapsedSeconds: elapsed,
                             acquisitions: total.acquisitions, lockCalls: total.lockCalls,
                             withLockCalls: total.withLockCalls, trylockAttempts: total.trylockAttempts,
                             trylockSuccesses: total.trylockSuccesses, sleepsHolding: total.sleepsHolding,
                             yieldsHolding: total.yieldsHolding, counter: counter,
                             minThreadAcquisitions: minimum, maxThreadAcquisitions: maximum)
    }

    /// Tortures executor `E` (a delegation executor): every client applies operations through
    /// `execute`; whoever applies one (the client, a combiner, a server thread) runs the torture's
    /// critical section for it, holding the exclusion through the hold the client drew (a
    /// combiner or server sleeps or yields mid-pass). Each operation carries its client and
    /// sequence number and must come back with its own result. Helper threads run unpinned with
    /// the clients.
    public static func run<E: Executor>(executor: E.Type, config: TortureConfig) throws -> TortureResult {
        let descriptor = E.descriptor
        let threadCount = max(1, min(config.threads, descriptor.maxThreads ?? .max))
        let label = config.spec.name == descriptor.name ? config.spec.label : descriptor.name
        let nodeCount = max(1, config.nodeCount)
        // Torture's threads are unpinned: they share CPUs (delegation waiters yield).
        let executor = try E(ExecutorEnvironment(clientThreads: threadCount, nodeCount: nodeCount, options: config.spec.options,
                                                 threadsShareCPUs: true))
        // A replicated executor (node replication) applies every operation once per replica: each
        // replica gets its own critical section (owner word, counter), all checked.
        let replicaCount = max(1, E.replicas(nodeCount: nodeCount))
        let replicaShared = UnsafeMutablePointer<TortureShared>.allocate(capacity: replicaCount)
        for r in 0..<replicaCount { (replicaShared + r).initialize(to: TortureShared()) }
        let shared = replicaShared[0]
        func freeShared() {
            for r in 0..<replicaCount { replicaShared[r].deallocate() }
            replicaShared.deallocate()
        }
        func firstViolation() -> UInt64 {
            for r in 0..<replicaCount {
                let v = cshims_u64_load_acquire(replicaShared[r].violation)
                if v != 0 { return v }
            }
            return 0
        }
        let outcomes = UnsafeMutablePointer<TortureCounts>.allocate(capacity: threadCount)
        let parameters = TortureParameters(mix: config.mix, seed: config.seed, canSplit: false, canTry: false,
                                           faultHang: Harness.faultHangLock == descriptor.name)
        let helpers = descriptor.helperThreads
        let group = ThreadGroup(slots: (0..<(threadCount + helpers)).map { ThreadSlot(index: $0, cpu: nil, node: $0 % nodeCount) })
        do {
            try group.start { slot, control in
                if slot.index < threadCount {
                    tortureClient(executor: executor, slot: slot, parameters: parameters, control: control, shared: shared,
                                  replicas: replicaShared, out: outcomes + slot.index)
                } else {
                    let target = TortureTarget(shared: shared, control: control, me: UInt64(slot.index + 1), replicas: replicaShared)
                    if parameters.faultHang {
                        executor.serve(helper: slot, target: HangingTarget(), control: control)
                    } else {
                        executor.serve(helper: slot, target: target, control: control)
                    }
                }
            }
            try group.waitUntilReady()
        } catch let error as ThreadGroupError {
            outcomes.deallocate()
            executor.deallocate()
            freeShared()
            throw LockError.unsupported("torture \(label): \(error.description)")
        }
        group.setPhase(GroupPhase.measure)
        let (stalled, elapsedNanoseconds) = group.watch(
            seconds: config.durationSeconds, stallTimeoutSeconds: config.stallTimeoutSeconds,
            stopEarly: { firstViolation() != 0 })
        group.setPhase(GroupPhase.stop)
        let elapsed = Double(elapsedNanoseconds) / 1e9
        let finished = group.waitForFinish(
            stallTimeoutSeconds: stalled ? min(config.stallTimeoutSeconds, 1) : config.stallTimeoutSeconds)
        var violationCode = firstViolation()
        if !finished {
            let done = min(group.finishedCount, threadCount)
            let progress = group.control.totalProgress()
            group.abandon()
            let stuck = "\(threadCount - done) of \(threadCount) clients stuck"
            let verdict: TortureVerdict
            if violationCode != 0 {
                verdict = .violation(TortureViolation.describe(violationCode) + " (then \(stuck))")
            } else if stalled {
                verdict = .hung("no operation applied for \(formatSeconds(config.stallTimeoutSeconds)) s after \(progress); \(stuck)")
            } else {
                verdict = .hung("\(stuck) after the run was told to stop")
            }
            return TortureResult(lock: label, threads: threadCount, verdict: verdict, elapsedSeconds: elapsed,
                                 acquisitions: progress, lockCalls: 0, withLockCalls: 0, trylockAttempts: 0,
                                 trylockSuccesses: 0, sleepsHolding: 0, yieldsHolding: 0, counter: shared.counter.pointee,
                                 minThreadAcquisitions: 0, maxThreadAcquisitions: 0)
        }
        group.join()
        if replicaCount > 1 {
            // Replicas behind the log's tail replay the rest before the counters are read.
            executor.catchUp(through: TortureTarget(shared: shared, control: group.control,
                                                    me: UInt64(threadCount + helpers + 1), replicas: replicaShared))
            violationCode = firstViolation()
        }
        var total = TortureCounts()
        var minimum = UInt64.max
        var maximum: UInt64 = 0
        for i in 0..<threadCount {
            let c = (outcomes + i).move()
            total.acquisitions &+= c.acquisitions
            total.withLockCalls &+= c.withLockCalls
            total.sleepsHolding &+= c.sleepsHolding
            total.yieldsHolding &+= c.yieldsHolding
            minimum = min(minimum, c.acquisitions)
            maximum = max(maximum, c.acquisitions)
        }
        outcomes.deallocate()
        let counter = shared.counter.pointee
        let replicaCounters = (0..<replicaCount).map { replicaShared[$0].counter.pointee }
        executor.deallocate()
        freeShared()
        let verdict: TortureVerdict
        if violationCode != 0 {
            verdict = .violation(TortureViolation.describe(violationCode))
        } else if counter != total.acquisitions {
            verdict = .violation("lost updates: the plain counter is \(counter) after \(total.acquisitions) operations")
        } else if let r = replicaCounters.firstIndex(where: { $0 != total.acquisitions }) {
            verdict = .violation("replica \(r) applied \(replicaCounters[r]) of \(total.acquisitions) operations")
        } else if stalled {
            verdict = .hung("no operation applied for \(formatSeconds(config.stallTimeoutSeconds)) s after \(total.acquisitions) operations")
        } else {
            verdict = .passed
        }
        return TortureResult(lock: label, threads: threadCount, verdict: verdict, elapsedSeconds: elapsed,
                             acquisitions: total.acquisitions, lockCalls: 0, withLockCalls: total.withLockCalls,
                             trylockAttempts: 0, trylockSuccesses: 0, sleepsHolding: total.sleepsHolding,
                             yieldsHolding: total.yieldsHolding, counter: counter,
                             minThreadAcquisitions: minimum, maxThreadAcquisitions: maximum)
    }

    /// Seconds as a short text: "10", "0.5".
    public static func formatSeconds(_ s: Double) -> String {
        s == s.rounded() ? String(Int(s)) : String(format: "%.1f", s)
    }
}

@usableFromInline
struct TortureParameters: Sendable {
    @usableFromInline let mix: TortureMix
    @usableFromInline let seed: UInt64
    /// lock() and unlock() may be called (else withLock only).
    @usableFromInline let canSplit: Bool
    /// tryLock() may be called.
    @usableFromInline let canTry: Bool
    /// Injected fault (`Harness.faultHangLock`): thread 0 holds the lock forever.
    @usableFromInline let faultHang: Bool
}

extension Torture {
    /// One torture thread. Specialised per lock type.
    @inline(never)
    static func tortureThread<L: LockAlgorithm>(
        lock: L, slot: ThreadSlot, parameters: TortureParameters, control: GroupControl, shared: TortureShared,
        out: UnsafeMutablePointer<TortureCounts>
    ) {
        var context = lock.makeContext(for: slot)
        var random = SplitMix64(seed: parameters.seed ^ (UInt64(slot.index + 1) &* 0x9E37_79B9_7F4A_7C15))
        var counts = TortureCounts()
        let me = UInt64(slot.index + 1)
        let progress = control.progress(slot.index)
        let mix = parameters.mix

        if control.arriveAndWait() == GroupPhase.abort {
            // The group could not start every thread: leave without an outcome.
            lock.freeContext(&context)
            return
        }
        if parameters.faultHang && slot.index == 0 { lock.withLock(&context) { while true { sleep(3600) } } }

        while control.currentPhase() == GroupPhase.measure {
            let hold = drawHold(&random, mix)
            let choice = random.next()
            if parameters.canTry && choice % mix.trylockEvery == 0 {
                counts.trylockAttempts &+= 1
                guard lock.tryLock(&context) else {
                    gap(&random, mix)
                    continue
                }
                counts.trylockSuccesses &+= 1
                criticalSection(shared, control, me: me, entry: .tryLock, hold: hold)
                lock.unlock(&context)
            } else if parameters.canSplit && (choice >> 16) % mix.withLockEvery != 0 {
                counts.lockCalls &+= 1
                lock.lock(&context)
                criticalSection(shared, control, me: me, entry: .lock, hold: hold)
                lock.unlock(&context)
            } else {
                counts.withLockCalls &+= 1
                lock.withLock(&context) {
                    criticalSection(shared, control, me: me, entry: .withLock, hold: hold)
                }
            }
            switch hold {
            case .sleep: counts.sleepsHolding &+= 1
            case .yield: counts.yieldsHolding &+= 1
            case .none, .spin: break
            }
            counts.acquisitions &+= 1
            cshims_u64_store_relaxed(progress, counts.acquisitions)
            gap(&random, mix)
        }
        out.initialize(to: counts)
        lock.freeContext(&context)
    }

    /// One torture client of an executor: operations with the hold encoded in them; each must
    /// come back with its own result. Counted as `withLockCalls` (the only entry point).
    @inline(never)
    static func tortureClient<E: Executor>(
        executor: E, slot: ThreadSlot, parameters: TortureParameters, control: GroupControl, shared: TortureShared,
        replicas: UnsafePointer<TortureShared>, out: UnsafeMutablePointer<TortureCounts>
    ) {
        var context = executor.makeContext(for: slot)
        var random = SplitMix64(seed: parameters.seed ^ (UInt64(slot.index + 1) &* 0x9E37_79B9_7F4A_7C15))
        var counts = TortureCounts()
        let me = UInt64(slot.index + 1)
        let progress = control.progress(slot.index)
        let target = TortureTarget(shared: shared, control: control, me: me, replicas: replicas)
        if control.arriveAndWait() == GroupPhase.abort {
            executor.freeContext(&context)
            return
        }
        if parameters.faultHang && slot.index == 0 { _ = executor.execute(Operation(code: 0), on: HangingTarget(), &context) }
        while control.currentPhase() == GroupPhase.measure {
            let hold = drawHold(&random, parameters.mix)
            let sequence = counts.acquisitions & 0xFFFF_FFFF
            let op = Operation(code: TortureTarget.encode(hold), arg0: me << 32 | sequence, arg1: 0)
            let result = executor.execute(op, on: target, &context)
            if result != TortureTarget.response(op) {
                report(shared, control, TortureViolation.code(kind: TortureViolation.wrongResponse, entry: .execute, thread: me, other: sequence))
            }
            switch hold {
            case .sleep: counts.sleepsHolding &+= 1
            case .yield: counts.yieldsHolding &+= 1
            case .none, .spin: break
            }
            counts.withLockCalls &+= 1
            counts.acquisitions &+= 1
            cshims_u64_store_relaxed(progress, counts.acquisitions)
            gap(&random, parameters.mix)
        }
        out.initialize(to: counts)
        executor.freeContext(&context)
    }

    /// The torture's critical section: owner word in, plain counter, the hold, owner word out.
    @inline(__always)
    static func criticalSection(_ shared: TortureShared, _ control: GroupControl, me: UInt64, entry: TortureEntry, hold: TortureHold) {
        let seen = cshims_u64_load_relaxed(shared.owner)
        if seen != 0 { report(shared, control, TortureViolation.code(kind: TortureViolation.enteredWhileHeld, entry: entry, thread: me, other: seen)) }
        cshims_u64_store_relaxed(shared.owner, me)
        shared.counter.pointee &+= 1
        switch hold {
        case .none: break
        case let .spin(pauses): for _ in 0..<pauses { cshims_pause() }
        case .yield: sched_yield()
        case let .sleep(microseconds): usleep(microseconds)
        }
        let still = cshims_u64_load_relaxed(shared.owner)
        if still != me { report(shared, control, TortureViolation.code(kind: TortureViolation.intruderDuringHold, entry: entry, thread: me, other: still)) }
        cshims_u64_store_relaxed(shared.owner, 0)
    }

    /// Records the first violation and stops every thread.
    @inline(never)
    static func report(_ shared: TortureShared, _ control: GroupControl, _ code: UInt64) {
        var expected: UInt64 = 0
        _ = cshims_u64_cas_acq_rel(shared.violation, &expected, code)
        cshims_u32_store_release(control.phase, GroupPhase.stop)
    }

    @inline(__always)
    static func drawHold(_ random: inout SplitMix64, _ mix: TortureMix) -> TortureHold {
        let r = random.next()
        if r % mix.sleepHoldEvery == 0 {
            let span = UInt64(mix.sleepMicroseconds.upperBound - mix.sleepMicroseconds.lowerBound) + 1
            return .sleep(mix.sleepMicroseconds.lowerBound + UInt32((r >> 32) % span))
        }
        if (r >> 12) % mix.yieldHoldEvery == 0 { return .yield }
        if (r >> 24) % mix.spinHoldEvery == 0 { return .spin((r >> 40) & 255) }
        return .none
    }

    @inline(__always)
    static func gap(_ random: inout SplitMix64, _ mix: TortureMix) {
        let r = random.next()
        if r % mix.yieldGapEvery == 0 {
            sched_yield()
        } else if (r >> 16) & 1 == 0 {
            let pauses = (r >> 24) & 511
            for _ in 0..<pauses { cshims_pause() }
        }
    }
}

/// What an executor applies in torture: the critical section (owner word, plain counter, the hold
/// the client drew, encoded in the operation code), answered with a value only this operation has.
struct TortureTarget: OperationTarget {
    let shared: TortureShared
    let control: GroupControl
    /// The applying thread (index + 1): a combiner or server, not necessarily the client.
    let me: UInt64
    /// Every replica's critical section (one unless the executor replicates).
    let replicas: UnsafePointer<TortureShared>

    func replica(_ r: Int) -> TortureTarget {
        TortureTarget(shared: replicas[r], control: control, me: me, replicas: replicas)
    }

    func apply(_ op: Operation) -> UInt64 {
        Torture.criticalSection(shared, control, me: me, entry: .execute, hold: Self.decode(op.code))
        return Self.response(op)
    }

    /// The result operation `op` must come back with.
    @inline(__always) static func response(_ op: Operation) -> UInt64 { op.arg0 ^ 0x5DEE_CE66_D1CE_F00D }

    static func encode(_ hold: TortureHold) -> UInt64 {
        switch hold {
        case .none: return 0
        case let .spin(n): return 1 << 60 | n
        case .yield: return 2 << 60
        case let .sleep(us): return 3 << 60 | UInt64(us)
        }
    }

    static func decode(_ code: UInt64) -> TortureHold {
        switch code >> 60 {
        case 1: return .spin(code & 0xFFFF)
        case 2: return .yield
        case 3: return .sleep(UInt32(code & 0xFFFF_FFFF))
        default: return .none
        }
    }
}
