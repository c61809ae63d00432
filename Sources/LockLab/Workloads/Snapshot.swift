// snapshot: one shared object of `lines` 64-byte cache lines holding a version in every word, read
// whole and written whole: the read-mostly microbenchmark of the reader-writer and RCU papers
// (liburcu's tests/benchmark/test_urcu.c and its rwlock twin test_rwlock.c run one read loop over
// one shared object under RCU, a reader-writer lock and a mutex). `read-ratio` percent reads, the
// rest updates.
// Read: loads every word and returns the version if all agree, else `snapshotTornResult`: a read
// that ran beside an update and saw part of two versions. An update writes version + 1 into every
// word and returns the version it replaced. Model: one integer.
// The read path stores nothing (`isReadOnly`), its loop is bounded by `lines` and the object is
// never freed during a run, and every word is loaded and stored through the shim's atomics
// (relaxed), so a read beside an update is no data race: reads tolerate concurrent updates (a
// seqlock's reader may run here, Boehm MSPC 2012) and a torn result is what such a read returns.
// Whole-run invariants: every word holds the same version, equal to the updates applied; no
// thread's read returned a torn object (each thread counts its own on a line of its own, outside
// the shared object, so counting writes nothing shared); with the log, every result is the model's.

import CShims

/// What a read returns when the words disagreed (never a version: versions count updates).
public let snapshotTornResult: UInt64 = .max - 1

/// The shared object: `wordCount` words, `lines` whole lines after the harness record's line.
@frozen
public struct SnapshotObject: SequentialStructure {
    public static let read: UInt64 = 0
    public static let update: UInt64 = 1
    @usableFromInline let words: UnsafeMutablePointer<UInt64>
    @usableFromInline let wordCount: Int

    /// read: the version, or `snapshotTornResult`; update: writes version + 1 everywhere and
    /// returns the old version.
    @inline(__always)
    public func apply(_ op: Operation) -> UInt64 {
        // Relaxed loads and stores: the ordering against other threads is the executor's (a lock's
        // acquire and release, a seqlock's sequence loads); atomics only make a read beside an
        // update well defined.
        let first = cshims_u64_load_relaxed(words)
        if op.code == Self.read {
            // Every word is loaded (no early exit): a read costs the same whether or not it tears.
            var differ: UInt64 = 0
            var i = 1
            while i < wordCount {
                differ |= cshims_u64_load_relaxed(words + i) ^ first
                i &+= 1
            }
            return differ != 0 ? snapshotTornResult : first
        }
        let next = first &+ 1
        var i = 0
        while i < wordCount {
            cshims_u64_store_relaxed(words + i, next)
            i &+= 1
        }
        return first
    }

    @inline(__always)
    public static func isReadOnly(_ op: Operation) -> Bool { op.code == read }

    public static var readsTolerateConcurrentUpdates: Bool { true }
}

public struct SnapshotWorkload: Workload {
    public struct ThreadState {
        @usableFromInline var random: SplitMix64
        @usableFromInline var outsideRandom: UInt64
        /// This thread's torn-read count, on a line of its own.
        @usableFromInline let torn: UnsafeMutablePointer<UInt64>
    }

    public struct Model: SequentialModel {
        var version: UInt64 = 0
        public mutating func apply(_ op: Operation) -> UInt64 {
            if op.code == SnapshotObject.read { return version }
            defer { version &+= 1 }
            return version
        }
        public func contents() -> [UInt64] { [version] }
    }

    public static let name = "snapshot"
    public let structure: SnapshotObject
    public let record: UnsafeMutablePointer<HarnessRecord>
    @usableFromInline let outside: OutsideWork
    @usableFromInline let readPercent: UInt64
    /// One line per thread: the torn-read counts.
    let tornLines: UnsafeMutablePointer<UInt64>
    let threads: Int
    let bytes: Int
    let memory: LabMemory

    /// Words per 64-byte line.
    static let lineWords = 8

    /// `lines` in 1...65536, `readPercent` in 0...100 (checked by the catalog).
    public init(_ environment: WorkloadEnvironment, lines: Int, readPercent: Int, outside: OutsideWork) {
        memory = environment.memory
        bytes = 64 * (1 + lines)
        let raw = memory.allocate(bytes: bytes)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        record = raw.bindMemory(to: HarnessRecord.self, capacity: 1)
        structure = SnapshotObject(words: (raw + 64).bindMemory(to: UInt64.self, capacity: lines * Self.lineWords),
                                   wordCount: lines * Self.lineWords)
        threads = environment.threads
        tornLines = memory.allocate(bytes: threads * 64).bindMemory(to: UInt64.self, capacity: threads * Self.lineWords)
        tornLines.initialize(repeating: 0, count: threads * Self.lineWords)
        self.readPercent = UInt64(readPercent)
        self.outside = outside
    }

    public func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> ThreadState {
        ThreadState(random: SplitMix64(seed: SplitMix64.seed(seed, thread: thread.index)),
                    outsideRandom: SplitMix64.seed(seed ^ 0x5bd1_e995, thread: thread.index),
                    torn: tornLines + (thread.index % threads) * Self.lineWords)
    }

    @inline(__always)
    public func nextOperation(_ state: inout ThreadState) -> Operation {
        let isRead = state.random.next().multipliedFullWidth(by: 100).high < readPercent
        return Operation(code: isRead ? SnapshotObject.read : SnapshotObject.update)
    }

    @inline(__always)
    public func completed(_ op: Operation, result: UInt64, _ state: inout ThreadState) {
        // The thread's own line: counting a torn read stores nothing shared.
        if result == snapshotTornResult { state.torn.pointee &+= 1 }
    }

    @inline(__always)
    public func outsideCriticalSection(_ state: inout ThreadState) { outside.run(&state.outsideRandom) }

    public func makeModel() -> Model { Model() }

    /// Torn reads seen by the threads, in total.
    public var tornReads: UInt64 {
        (0..<threads).reduce(0) { $0 &+ tornLines[$1 * Self.lineWords] }
    }

    public func invariantFailure(applied: UInt64) -> String? {
        let torn = tornReads
        if torn > 0 {
            return "\(torn) reads saw a torn object (words of two versions): a read ran beside an update"
        }
        let first = structure.words.pointee
        for i in 0..<structure.wordCount where structure.words[i] != first {
            return "word \(i) holds version \(structure.words[i]), word 0 \(first): an update was torn"
        }
        return nil
    }

    public func contents() -> [UInt64] { [structure.words.pointee] }

    public func sharedMemory() -> [UnsafeRawBufferPointer] { [UnsafeRawBufferPointer(start: record, count: bytes)] }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(record), bytes: bytes)
        memory.deallocate(UnsafeMutableRawPointer(tornLines), bytes: threads * 64)
    }
}
