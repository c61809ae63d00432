// Workloads: what a thread does inside and outside the critical section.
//
// The harness is generic over the workload as well as the lock, so every (lock, workload) pair
// compiles into one specialised loop. The harness itself always keeps a plain counter and the last
// holder's thread and node inside the critical section (the mutual-exclusion check and handover
// locality); a workload adds its own shared work on top.

import CShims

/// Work run with the lock held and between acquisitions.
public protocol Workload {
    associatedtype ThreadState
    /// Made once per thread, on the thread, before the start barrier.
    func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState
    /// Runs with the lock held.
    func criticalSection(_ state: inout ThreadState)
    /// Runs after release, before the next acquire.
    func outsideCriticalSection(_ state: inout ThreadState)
    /// After the run: is the shared data what `acquisitions` exclusive critical sections leave?
    func verify(acquisitions: UInt64) -> Bool
    /// Frees shared memory after every thread has finished.
    func deallocate()
}

/// Parameters of the lock microbenchmark (`--cs-lines`, `--cs-ns`, `--ncs-ns`, `--ncs-random`).
public struct MicrobenchmarkParameters: Sendable, Equatable, Hashable {
    /// Shared cache lines read-modify-written inside the critical section.
    public var csLines: Int
    /// Busy-wait inside the critical section, ns (TSC-calibrated).
    public var csNanoseconds: Int
    /// Busy-wait outside the critical section, ns.
    public var ncsNanoseconds: Int
    /// Draw each outside wait uniformly from [0, 2 * ncsNanoseconds] (mean unchanged).
    public var ncsRandom: Bool

    public init(csLines: Int = 1, csNanoseconds: Int = 0, ncsNanoseconds: Int = 0, ncsRandom: Bool = false) {
        self.csLines = csLines
        self.csNanoseconds = csNanoseconds
        self.ncsNanoseconds = ncsNanoseconds
        self.ncsRandom = ncsRandom
    }
}

/// The microbenchmark: RMW `csLines` shared lines and spin `csNanoseconds` inside; spin
/// `ncsNanoseconds` (optionally randomised) outside.
public struct Microbenchmark: Workload {
    public struct ThreadState {
        @usableFromInline var random: UInt64
    }

    @usableFromInline let lines: UnsafeMutablePointer<UInt64>
    @usableFromInline let lineCount: Int
    @usableFromInline let csCycles: UInt64
    @usableFromInline let ncsCycles: UInt64
    @usableFromInline let ncsRandom: Bool
    let memory: LabMemory

    /// UInt64s per 64-byte cache line.
    @usableFromInline static let wordsPerLine = 8

    public init(_ parameters: MicrobenchmarkParameters, memory: LabMemory) {
        self.memory = memory
        lineCount = max(0, parameters.csLines)
        lines = memory.allocate(bytes: max(1, lineCount) * 64).bindMemory(to: UInt64.self, capacity: max(1, lineCount) * 8)
        csCycles = CycleClock.cycles(nanoseconds: parameters.csNanoseconds)
        ncsCycles = CycleClock.cycles(nanoseconds: parameters.ncsNanoseconds)
        ncsRandom = parameters.ncsRandom
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState {
        // SplitMix-style mix so that neighbouring thread seeds give unrelated streams; never zero.
        var z = seed &+ UInt64(thread.index + 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return ThreadState(random: (z ^ (z >> 31)) | 1)
    }

    @inline(__always)
    public func criticalSection(_ state: inout ThreadState) {
        var i = 0
        while i < lineCount {
            lines[i &* Self.wordsPerLine] &+= 1
            i &+= 1
        }
        if csCycles != 0 { cshims_spin_cycles(csCycles) }
    }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) {
        guard ncsCycles != 0 else { return }
        if ncsRandom {
            // xorshift64*, then scale to [0, 2 * ncs] without a division.
            var x = state.random
            x ^= x >> 12
            x ^= x << 25
            x ^= x >> 27
            state.random = x
            let r = x &* 2_685_821_657_736_338_717
            cshims_spin_cycles(r.multipliedFullWidth(by: 2 &* ncsCycles &+ 1).high)
        } else {
            cshims_spin_cycles(ncsCycles)
        }
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(lines), bytes: max(1, lineCount) * 64)
    }

    /// Each critical section adds 1 to every line: each must equal the acquisitions (a second,
    /// independent mutual-exclusion check on data the workload owns).
    public func verify(acquisitions: UInt64) -> Bool {
        (0..<lineCount).allSatisfy { lines[$0 * Self.wordsPerLine] == acquisitions }
    }
}
