// The coherence probe: what one memory operation costs on a cache line in a given coherence state,
// between two given CPUs.
//
// After ccbench (T. David, R. Guerraoui, V. Trigonakis, "Everything You Always Wanted to Know About
// Synchronization but Were Afraid to Ask", SOSP 2013). Two threads, pinned: the *owner* (cpu_a)
// puts a line into a state, the *timer* (cpu_b) times one operation on it between two ordered
// cycle-counter reads (cshims_cycles_begin / cshims_cycles_end: lfence-rdtsc-lfence, rdtscp-lfence).
//
// States, as seen from the timer before its operation:
//   M  the owner flushed the line (no cache holds it) and stored to it: Modified in the owner only;
//   E  the owner flushed the line and loaded it: Exclusive (clean) in the owner only;
//   S  the owner flushed and loaded it, then the timer loaded it: Shared by both (a timed load is a
//      hit in the timer's own cache; a timed write must invalidate the owner's copy);
//   I  the timer loaded the line, then the owner stored to it: the timer's copy is Invalid and the
//      line Modified in the owner. The same protocol state as M with another history (the timer
//      held a copy); a difference between the two rows is the directory or snoop filter's doing.
// Operations: load, store (followed by mfence, which waits until the store is globally visible:
// without it the timer would measure its store buffer), compare-exchange (succeeds), fetch-add,
// exchange: what locks do to their words.
//
// One repetition (the `sequence` word, on its own 128-byte block, orders the two threads):
//   timer  [I: load the line]  sequence = s      wait for s + 1   [S: load the line]  TIME OP
//   owner                      wait for s        prepare the state, then sequence = s + 1
// x86 keeps stores in order and no load passes a later store, so when the timer sees s + 1 the
// owner's store (M, I) is globally visible and its load (E, S) has completed.
//
// Against the prefetchers, the repetitions cycle through `lineCount` lines, each alone on its own
// 4 KiB page (the L2 streamer works within a page) at a different 128-byte offset (so they spread
// over the L1's sets instead of thrashing one) in a shuffled order, and each line owns its 128-byte
// pair (the adjacent-line prefetcher fetches the pair). 32 lines fit in the L1 dTLB.
//
// The cost of the two counter reads themselves is measured on the timer's CPU before each pair
// (`overheadSamples` empty sections) and its minimum subtracted from every sample (a sample below
// it counts as 0): the numbers are the operation's own latency. Cycles are cycle-counter ticks (on
// x86 the invariant TSC, at the nominal frequency, not the core clock), converted to ns with the
// calibrated ticks/ns.
//
// The timer checks what it observes: the value a load, exchange or fetch-add returns and the
// success of every compare-exchange must match the value the protocol left in the line. A mismatch
// means the two threads did not alternate as designed, and the probe throws rather than report.

import CShims
import Foundation

/// The coherence state a line is in, from the timing CPU's point of view, before the timed operation.
public enum CoherenceState: String, CaseIterable, Sendable, Codable {
    case modified = "M"
    case exclusive = "E"
    case shared = "S"
    case invalid = "I"
}

/// The operation the timing CPU performs on the line.
public enum CoherenceOperation: String, CaseIterable, Sendable, Codable {
    case load
    case store
    case cas
    case fetchAdd = "fetch-add"
    case exchange
}

/// Latency of one (state, operation) between two CPUs, after the timer overhead was subtracted.
public struct CoherenceMeasurement: Sendable, Equatable {
    public var state: CoherenceState
    public var operation: CoherenceOperation
    /// The CPU that put the line into `state` (the owner).
    public var cpuA: Int
    /// The CPU that timed the operation.
    public var cpuB: Int
    public var distance: DistanceClass
    public var reps: Int
    /// Cycle-counter ticks, overhead subtracted: minimum, median and 99th percentile.
    public var minCycles: Double
    public var medianCycles: Double
    public var p99Cycles: Double
    /// The overhead (minimum of an empty timed section) subtracted from every sample, in ticks.
    public var overheadCycles: Double
    /// Ticks per ns used for the conversion.
    public var cyclesPerNanosecond: Double

    public init(state: CoherenceState, operation: CoherenceOperation, cpuA: Int, cpuB: Int, distance: DistanceClass,
                reps: Int, minCycles: Double, medianCycles: Double, p99Cycles: Double, overheadCycles: Double,
                cyclesPerNanosecond: Double) {
        self.state = state
        self.operation = operation
        self.cpuA = cpuA
        self.cpuB = cpuB
        self.distance = distance
        self.reps = reps
        self.minCycles = minCycles
        self.medianCycles = medianCycles
        self.p99Cycles = p99Cycles
        self.overheadCycles = overheadCycles
        self.cyclesPerNanosecond = cyclesPerNanosecond
    }

    public var minNanoseconds: Double { minCycles / cyclesPerNanosecond }
    public var medianNanoseconds: Double { medianCycles / cyclesPerNanosecond }
    public var p99Nanoseconds: Double { p99Cycles / cyclesPerNanosecond }
}

/// Counter-read overhead on one CPU: the empty timed section, in ticks.
public struct TimerOverhead: Sendable, Equatable {
    public var minCycles: UInt64
    public var medianCycles: UInt64
}

public enum CoherenceProbe {
    /// Lines the repetitions cycle through (each alone on a 4 KiB page).
    public static let lineCount = 32
    static let pageBytes = 4096
    /// Empty timed sections measured to find the counter-read overhead.
    public static let overheadSamples = 20_000
    /// Default repetitions per (state, operation, pair).
    public static let defaultReps = 2000
    public static let maxReps = 1_000_000
    /// A pair whose (state, operation) takes longer than this is declared hung (at 1M reps and a
    /// few microseconds each, one takes a few seconds).
    static let stallTimeoutSeconds = 60.0

    /// Every (state, operation), state-major: the full matrix one pair gets.
    public static var fullMatrix: [(CoherenceState, CoherenceOperation)] {
        CoherenceState.allCases.flatMap { s in CoherenceOperation.allCases.map { (s, $0) } }
    }

    /// What the all-pairs heat map measures for every ordered pair.
    public static let heatMapMatrix: [(CoherenceState, CoherenceOperation)] = [(.modified, .load), (.modified, .store)]

    /// Measures `matrix` between `owner` (cpu_a, prepares the line) and `timer` (cpu_b, times the
    /// operation), `reps` repetitions each. Both CPUs must be online CPUs of this machine and differ.
    /// Throws `LabError` when a thread cannot be pinned or the self-check fails.
    public static func measure(owner: Int, timer: Int, distance: DistanceClass,
                               matrix: [(CoherenceState, CoherenceOperation)],
                               reps: Int) throws -> (measurements: [CoherenceMeasurement], overhead: TimerOverhead) {
        precondition(owner != timer && reps >= 1 && !matrix.isEmpty)
        let shared = ProbeShared(reps: reps, combinations: matrix.count)
        let states = matrix.map(\.0)
        let operations = matrix.map(\.1)
        var timerResult = TimerThreadResult()

        // Thread 0 is the owner, thread 1 the timer; ThreadGroup pins them and opens the barrier.
        let group = ThreadGroup(slots: [ThreadSlot(index: 0, cpu: owner, node: 0),
                                        ThreadSlot(index: 1, cpu: timer, node: 0)])
        do {
            try group.start { slot, control in
                guard control.arriveAndWait() != GroupPhase.stop else { return }
                if slot.index == 0 {
                    // First touch: the lines' pages land on the owner's node.
                    memset(shared.lines, 0, lineCount * pageBytes)
                    cshims_u32_store_release(shared.linesReady, 1)
                    ownerLoop(shared: shared, states: states, reps: reps)
                } else {
                    while cshims_u32_load_acquire(shared.linesReady) == 0 { cshims_pause() }
                    timerResult = timerLoop(shared: shared, states: states, operations: operations, reps: reps,
                                            progress: control.progress(1))
                }
            }
            try group.waitUntilReady()
        } catch {
            throw LabError.impossible("coherence: cpus \(owner),\(timer): \(error)")
        }
        group.setPhase(GroupPhase.measure)
        guard group.waitForFinish(stallTimeoutSeconds: stallTimeoutSeconds) else {
            group.abandon()
            throw LabError.impossible("coherence: cpus \(owner),\(timer) made no progress for \(Int(stallTimeoutSeconds)) s (a thread descheduled for that long?); abandoned")
        }
        group.join()
        shared.deallocate()

        if timerResult.mismatches > 0 {
            throw LabError.impossible("coherence: self-check failed on \(owner)->\(timer): \(timerResult.mismatches) operations saw a value the protocol did not leave (the threads did not alternate)")
        }
        let overheadTicks = Double(timerResult.overhead.minCycles)
        let perNs = CycleClock.cyclesPerNanosecond
        var measurements: [CoherenceMeasurement] = []
        for (c, (state, op)) in matrix.enumerated() {
            let stats = timerResult.statistics[c]
            measurements.append(CoherenceMeasurement(
                state: state, operation: op, cpuA: owner, cpuB: timer, distance: distance, reps: reps,
                minCycles: stats.min, medianCycles: stats.median, p99Cycles: stats.p99,
                overheadCycles: overheadTicks, cyclesPerNanosecond: perNs))
        }
        return (measurements, timerResult.overhead)
    }

    /// Minimum, median and 99th percentile (nearest rank) of overhead-subtracted samples, in ticks.
    static func statistics(_ buffer: UnsafeMutableBufferPointer<UInt64>, overhead: UInt64) -> SampleStatistics {
        var samples = buffer
        samples.sort()
        let n = samples.count
        func at(_ rank: Int) -> Double {
            let raw = samples[max(0, min(n - 1, rank))]
            return Double(raw > overhead ? raw - overhead : 0)
        }
        let median = n % 2 == 1 ? at(n / 2) : (at(n / 2 - 1) + at(n / 2)) / 2
        // Nearest rank: the smallest sample with at least 99% of the samples at or below it.
        let p99Rank = Int((Double(n) * 0.99).rounded(.up)) - 1
        return SampleStatistics(min: at(0), median: median, p99: at(p99Rank))
    }

    // MARK: - the two threads

    /// The owner: for each repetition, wait for the timer's go, prepare the line, answer.
    @inline(never)
    private static func ownerLoop(shared: ProbeShared, states: [CoherenceState], reps: Int) {
        let sequence = shared.sequence
        var go: UInt64 = 1
        var sink: UInt64 = 0
        for state in states {
            for k in 0..<reps {
                let line = shared.line(k)
                while cshims_u64_load_acquire(sequence) != go { cshims_pause() }
                switch state {
                case .modified:
                    cshims_flush_line(line)
                    cshims_u64_store_relaxed(line, go)
                case .exclusive, .shared:
                    cshims_flush_line(line)
                    sink &+= cshims_u64_load_relaxed(line)
                case .invalid:
                    cshims_u64_store_relaxed(line, go)
                }
                // Release: the line's new state is visible before the answer (x86: stores in order).
                cshims_u64_store_release(sequence, go &+ 1)
                go &+= 2
            }
        }
        cshims_u64_store_relaxed(shared.sink, sink)
    }

    struct TimerThreadResult {
        var overhead = TimerOverhead(minCycles: 0, medianCycles: 0)
        var statistics: [SampleStatistics] = []
        var mismatches = 0
    }

    /// The timer: measure the counter-read overhead, then every (state, operation) in turn.
    private static func timerLoop(shared: ProbeShared, states: [CoherenceState], operations: [CoherenceOperation],
                                  reps: Int, progress: UnsafeMutablePointer<UInt64>) -> TimerThreadResult {
        var result = TimerThreadResult()
        result.overhead = measureOverhead(into: shared.samples(count: overheadSamples))
        // What each line holds now, as the protocol left it (the owner's first touch zeroed them).
        let values = UnsafeMutablePointer<UInt64>.allocate(capacity: lineCount)
        values.initialize(repeating: 0, count: lineCount)
        defer { values.deallocate() }
        let samples = shared.samples(count: reps)
        var go: UInt64 = 1
        for (state, op) in zip(states, operations) {
            let mismatches: Int
            switch op {
            case .load: mismatches = timeOperation(LoadOperation.self, state, shared, values, samples, &go)
            case .store: mismatches = timeOperation(StoreOperation.self, state, shared, values, samples, &go)
            case .cas: mismatches = timeOperation(CASOperation.self, state, shared, values, samples, &go)
            case .fetchAdd: mismatches = timeOperation(FetchAddOperation.self, state, shared, values, samples, &go)
            case .exchange: mismatches = timeOperation(ExchangeOperation.self, state, shared, values, samples, &go)
            }
            result.mismatches += mismatches
            result.statistics.append(statistics(samples, overhead: result.overhead.minCycles))
            // For the watchdog: one step per (state, operation), outside every timed section.
            cshims_u64_store_relaxed(progress, UInt64(result.statistics.count))
        }
        return result
    }

    /// The two counter reads with nothing between them, `samples.count` times.
    @inline(never)
    static func measureOverhead(into samples: UnsafeMutableBufferPointer<UInt64>) -> TimerOverhead {
        for i in 0..<samples.count {
            let t0 = cshims_cycles_begin()
            let t1 = cshims_cycles_end()
            samples[i] = t1 &- t0
        }
        var sorted = samples
        sorted.sort()
        return TimerOverhead(minCycles: sorted[0], medianCycles: sorted[sorted.count / 2])
    }

    /// The timer's side of `reps` repetitions of one (state, operation). Specialised per operation:
    /// the timed section is the two counter reads around `Op.perform` and nothing else (see the
    /// objdump in README's coherence section). Returns how many operations saw a wrong value.
    @inline(never)
    static func timeOperation<Op: ProbeOperation>(
        _ op: Op.Type, _ state: CoherenceState, _ shared: ProbeShared, _ values: UnsafeMutablePointer<UInt64>,
        _ samples: UnsafeMutableBufferPointer<UInt64>, _ go: inout UInt64
    ) -> Int {
        let sequence = shared.sequence
        var mismatches = 0
        var sink: UInt64 = 0
        for k in 0..<samples.count {
            let index = shared.lineIndex(k)
            let line = shared.line(k)
            if state == .invalid { sink &+= cshims_u64_load_relaxed(line) }   // a copy to invalidate
            cshims_u64_store_release(sequence, go)
            while cshims_u64_load_acquire(sequence) != go &+ 1 { cshims_pause() }
            if state == .shared { sink &+= cshims_u64_load_relaxed(line) }      // join the owner
            if state == .modified || state == .invalid { values[index] = go }
            let expected = values[index]

            let t0 = cshims_cycles_begin()
            let observed = Op.perform(line, expected)
            let t1 = cshims_cycles_end()

            samples[k] = t1 &- t0
            if observed != expected { mismatches += 1 }
            if Op.writes { values[index] = expected &+ 1 }
            go &+= 2
        }
        cshims_u64_store_relaxed(shared.sink, sink)
        return mismatches
    }
}

struct SampleStatistics: Equatable {
    var min: Double
    var median: Double
    var p99: Double
}

/// One timed operation. `perform` returns the value it observed in the line (for a store, which
/// observes nothing, `current`; for a compare-exchange, `current` if it succeeded): the timer checks
/// it against what the protocol left there. A writing operation leaves `current + 1`.
@usableFromInline
protocol ProbeOperation {
    static var writes: Bool { get }
    static func perform(_ line: UnsafeMutablePointer<UInt64>, _ current: UInt64) -> UInt64
}

@usableFromInline
enum LoadOperation: ProbeOperation {
    @usableFromInline static var writes: Bool { false }
    @inline(__always) @usableFromInline
    static func perform(_ line: UnsafeMutablePointer<UInt64>, _ current: UInt64) -> UInt64 {
        cshims_u64_load_relaxed(line)
    }
}

@usableFromInline
enum StoreOperation: ProbeOperation {
    @usableFromInline static var writes: Bool { true }
    @inline(__always) @usableFromInline
    static func perform(_ line: UnsafeMutablePointer<UInt64>, _ current: UInt64) -> UInt64 {
        cshims_u64_store_relaxed(line, current &+ 1)
        // mfence: wait until the store (its read-for-ownership) is done, not merely buffered.
        cshims_fence_seq_cst()
        return current
    }
}

@usableFromInline
enum CASOperation: ProbeOperation {
    @usableFromInline static var writes: Bool { true }
    @inline(__always) @usableFromInline
    static func perform(_ line: UnsafeMutablePointer<UInt64>, _ current: UInt64) -> UInt64 {
        cshims_u64_cas_value_acq_rel(line, current, current &+ 1) ? current : ~current
    }
}

@usableFromInline
enum FetchAddOperation: ProbeOperation {
    @usableFromInline static var writes: Bool { true }
    @inline(__always) @usableFromInline
    static func perform(_ line: UnsafeMutablePointer<UInt64>, _ current: UInt64) -> UInt64 {
        cshims_u64_fetch_add_acq_rel(line, 1)
    }
}

@usableFromInline
enum ExchangeOperation: ProbeOperation {
    @usableFromInline static var writes: Bool { true }
    @inline(__always) @usableFromInline
    static func perform(_ line: UnsafeMutablePointer<UInt64>, _ current: UInt64) -> UInt64 {
        cshims_u64_exchange_acq_rel(line, current &+ 1)
    }
}

/// The memory both probe threads use (ThreadGroup owns the barrier and the watchdog's progress
/// words): control words, each on its own 128-byte block, the lines
/// (a fresh mmap, first touched by the owner), the visiting order and the timer's sample buffer.
final class ProbeShared: @unchecked Sendable {
    let control: UnsafeMutableRawPointer
    let lines: UnsafeMutableRawPointer
    let order: UnsafeMutablePointer<Int>
    let sampleBuffer: UnsafeMutablePointer<UInt64>
    let sampleCapacity: Int
    static let controlBlocks = 3

    init(reps: Int, combinations: Int) {
        control = UnsafeMutableRawPointer.allocate(byteCount: Self.controlBlocks * 128, alignment: 128)
        memset(control, 0, Self.controlBlocks * 128)
        let bytes = CoherenceProbe.lineCount * CoherenceProbe.pageBytes
        guard let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else {
            fatalError("coherence: cannot map \(bytes) bytes for the probe's lines")
        }
        lines = mapped
        // A fixed shuffle of the lines: the same order on every run, no stride for a prefetcher.
        order = .allocate(capacity: CoherenceProbe.lineCount)
        var indices = Array(0..<CoherenceProbe.lineCount)
        var rng = SplitMix64(seed: 0xC0FFEE)
        indices.shuffle(using: &rng)
        for (i, v) in indices.enumerated() { order[i] = v }
        sampleCapacity = max(reps, CoherenceProbe.overheadSamples)
        sampleBuffer = .allocate(capacity: sampleCapacity)
        sampleBuffer.initialize(repeating: 0, count: sampleCapacity)
    }

    var sequence: UnsafeMutablePointer<UInt64> { (control + 0).assumingMemoryBound(to: UInt64.self) }
    var linesReady: UnsafeMutablePointer<UInt32> { (control + 128).assumingMemoryBound(to: UInt32.self) }
    /// Where the threads leave the values they loaded, so the loads are not optimised away.
    var sink: UnsafeMutablePointer<UInt64> { (control + 256).assumingMemoryBound(to: UInt64.self) }

    /// The line repetition `k` uses: page `order[k mod lineCount]`, at a 128-byte offset that
    /// differs from page to page.
    @inline(__always) func lineIndex(_ k: Int) -> Int { order[k % CoherenceProbe.lineCount] }
    @inline(__always) func line(_ k: Int) -> UnsafeMutablePointer<UInt64> {
        let i = lineIndex(k)
        let offset = i &* CoherenceProbe.pageBytes &+ (i &* 128) % CoherenceProbe.pageBytes
        return (lines + offset).assumingMemoryBound(to: UInt64.self)
    }

    func samples(count: Int) -> UnsafeMutableBufferPointer<UInt64> {
        UnsafeMutableBufferPointer(start: sampleBuffer, count: min(count, sampleCapacity))
    }

    func deallocate() {
        control.deallocate()
        munmap(lines, CoherenceProbe.lineCount * CoherenceProbe.pageBytes)
        order.deallocate()
        sampleBuffer.deallocate()
    }
}
