// micro: the lock microbenchmark. Inside: read-modify-write `cs-lines` shared cache lines in all
// (the harness's record is the first of them, so `--cs-lines 1` moves one line per handover) and
// busy-wait `cs-ns`; outside: busy-wait `ncs-ns` (optionally drawn from [0, 2x]).
// Its one operation changes every line and returns 0; its model returns 0. Whole-run invariant:
// every line but the record's (whose counter the harness checks) equals the operations applied.

import CShims

/// Parameters of the lock microbenchmark (`--cs-lines`, `--cs-ns`, `--ncs-ns`, `--ncs-random`).
public struct MicrobenchmarkParameters: Sendable, Equatable, Hashable {
    /// Shared cache lines read-modify-written inside the critical section, the harness's record
    /// line included (0 and 1 both mean the record's line only).
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

/// The microbenchmark's shared lines: line 0 holds the harness record, lines 1..<count one word each.
@frozen
public struct MicroLines: SequentialStructure {
    @usableFromInline let lines: UnsafeMutablePointer<UInt64>
    @usableFromInline let lineCount: Int
    @usableFromInline let csCycles: UInt64

    /// UInt64s per 64-byte cache line.
    @usableFromInline static let wordsPerLine = 8

    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        var i = 1
        while i < lineCount {
            lines[i &* Self.wordsPerLine] &+= 1
            i &+= 1
        }
        if csCycles != 0 { cshims_spin_cycles(csCycles) }
        return 0
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { false }
}

/// The microbenchmark.
public struct Microbenchmark: Workload {
    public struct ThreadState {
        @usableFromInline var random: UInt64
    }
    public struct Model: SequentialModel {
        public mutating func apply(_ op: Operation) -> UInt64 { 0 }
        public func contents() -> [UInt64] { [] }
    }

    public static let name = "micro"
    public let structure: MicroLines
    public let record: UnsafeMutablePointer<HarnessRecord>
    @usableFromInline let outside: OutsideWork
    let memory: LabMemory
    let bytes: Int

    public init(_ parameters: MicrobenchmarkParameters, memory: LabMemory = LabMemory()) {
        self.memory = memory
        let lineCount = max(1, parameters.csLines)
        bytes = lineCount * 64
        let raw = memory.allocate(bytes: bytes)
        record = raw.bindMemory(to: HarnessRecord.self, capacity: 1)
        structure = MicroLines(lines: raw.assumingMemoryBound(to: UInt64.self), lineCount: lineCount,
                               csCycles: CycleClock.cycles(nanoseconds: parameters.csNanoseconds))
        outside = OutsideWork(nanoseconds: parameters.ncsNanoseconds, random: parameters.ncsRandom)
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState {
        ThreadState(random: SplitMix64.seed(seed, thread: thread.index))
    }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation { Operation(code: 0) }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { outside.run(&state.random) }

    public func makeModel() -> Model { Model() }

    /// Each operation adds 1 to every line after the record's: each must equal the operations
    /// applied (a second, independent mutual-exclusion check on data the workload owns).
    public func invariantFailure(applied: UInt64) -> String? {
        for i in 1..<structure.lineCount where structure.lines[i * MicroLines.wordsPerLine] != applied {
            return "line \(i) is \(structure.lines[i * MicroLines.wordsPerLine]) after \(applied) operations"
        }
        return nil
    }

    public func contents() -> [UInt64] { [] }

    public func sharedMemory() -> [UnsafeRawBufferPointer] { [UnsafeRawBufferPointer(start: record, count: bytes)] }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(record), bytes: bytes)
    }
}
