// The read/update split (Executor.swift, "Reads"; Runner.swift): a reader-sharing executor gets
// the workload's reads through its read path, and the harness checks them without writing a shared
// line: the version word (a read beside an update fails the run) and, in a logged run, each read's
// result against the model's states inside its version window. Every workload's reads must be
// truly read-only (its memory checksummed around many reads). Each check is shown able to fail:
// a reader-writer lock that lets readers in beside a writer, a read that returns a state it could
// not have seen, a read path that writes a statistics word.

import CShims
import Testing
@testable import LockLab

/// Sums the workload's shared memory (FNV-1a over every byte).
func checksum(_ regions: [UnsafeRawBufferPointer]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for region in regions {
        for byte in region { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
    }
    return h
}

/// Applies `updates` generated updates, then `reads` generated reads, sequentially; returns the
/// reads applied and whether the shared memory changed across the reads.
struct ReadOnlyProbe: WorkloadBinder {
    let updates: Int
    let reads: Int
    func run<W: Workload>(_ workload: W) throws -> (reads: Int, changed: Bool) {
        defer { workload.deallocate() }
        var state = workload.makeThreadState(for: ThreadSlot(index: 0, cpu: nil, node: 0), seed: 7)
        var applied = 0
        var tries = 0
        while applied < updates, tries < updates * 100 {
            tries += 1
            let op = workload.nextOperation(&state)
            if W.Structure.isReadOnly(op) { continue }
            workload.completed(op, result: workload.structure.apply(op), &state)
            applied += 1
        }
        let before = checksum(workload.sharedMemory())
        var done = 0
        tries = 0
        while done < reads, tries < reads * 100 {
            tries += 1
            let op = workload.nextOperation(&state)
            guard W.Structure.isReadOnly(op) else { continue }
            workload.completed(op, result: workload.structure.apply(op), &state)
            done += 1
        }
        return (done, checksum(workload.sharedMemory()) != before)
    }
}

/// A hash table whose get counts itself in a header word (a "statistics" write on the read path).
struct CountingGetTable: Workload {
    struct Structure: SequentialStructure {
        let inner: ChainedHashTable
        func apply(_ op: Operation) -> UInt64 {
            if op.code == ChainedHashTable.get { inner.block.header[3] &+= 1 }
            return inner.apply(op)
        }
        static func isReadOnly(_ op: Operation) -> Bool { ChainedHashTable.isReadOnly(op) }
    }
    static let name = "counting-get-table"
    let base = HashTableWorkload(WorkloadEnvironment(threads: 2), keys: 64, readPercent: 50,
                                 outside: OutsideWork(nanoseconds: 0, random: false))
    var structure: Structure { Structure(inner: base.structure) }
    var record: UnsafeMutablePointer<HarnessRecord> { base.record }
    func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> DataThreadState { base.makeThreadState(for: thread, seed: seed) }
    func nextOperation(_ state: inout DataThreadState) -> Operation { base.nextOperation(&state) }
    func outsideCriticalSection(_ state: inout DataThreadState) {}
    func makeModel() -> HashTableWorkload.Model { base.makeModel() }
    func invariantFailure(applied: UInt64) -> String? { base.invariantFailure(applied: applied) }
    func contents() -> [UInt64] { base.contents() }
    func sharedMemory() -> [UnsafeRawBufferPointer] { base.sharedMemory() }
    func deallocate() { base.deallocate() }
}

/// A reader-writer lock whose read side excludes nothing: readers run beside a writer.
struct ReadersIgnoreWriterLock: ReaderWriterLock {
    typealias Context = NoContext
    static let descriptor = LockDescriptor(name: "test-readers-ignore-writer", family: .readerWriter, waiting: .spin,
                                           paper: "test: a broken reader-writer lock", supportsTryLock: false)
    let inner: TTASLock
    init(_ environment: LockEnvironment) { inner = TTASLock(environment) }
    func lock(_ context: inout NoContext) { inner.lock(&context) }
    func unlock(_ context: inout NoContext) { inner.unlock(&context) }
    func readLock(_ context: inout NoContext) {}
    func readUnlock(_ context: inout NoContext) {}
    func deallocate() { inner.deallocate() }
}

/// Unpinned threads on two nodes (alternating), so per-node indicators and cohorts see both.
private func slots(_ n: Int) -> [ThreadSlot] { (0..<n).map { ThreadSlot(index: $0, cpu: nil, node: $0 % 2) } }

private func logged(_ lock: String, threads: Int, perThread: Int) throws -> RunConfig {
    RunConfig(spec: try LockSpec(parsing: lock), threads: slots(threads), nodeCount: 2, length: .iterations(perThread: perThread),
              sampleEvery: 4, logOperations: true)
}

@Suite("Read sharing", .serialized)
struct ReadSharingTests {
    @Test("every workload's reads write nothing: its shared memory is unchanged by many reads",
          arguments: WorkloadKind.allCases)
    func testReadsWriteNothing(kind: WorkloadKind) throws {
        let text = kind == .hashtable || kind == .list ? "\(kind.rawValue):keys=256:read-ratio=50"
            : kind == .snapshot ? "snapshot:lines=4:read-ratio=50" : kind.rawValue
        let probe = ReadOnlyProbe(updates: 2_000, reads: ThreadSanitizer.scaled(200_000))
        let (reads, changed) = try WorkloadSpec(parsing: text).bind(probe, environment: WorkloadEnvironment(threads: 2, seed: 3))
        #expect(!changed, "\(kind.rawValue): \(reads) reads changed the structure's memory")
        if kind == .hashtable || kind == .list || kind == .snapshot { #expect(reads > 0, "\(kind.rawValue) generated no reads") }
    }

    @Test("the read-only check catches a read path that writes")
    func testReadOnlyCheckCatchesAStatisticsWord() throws {
        let (reads, changed) = try ReadOnlyProbe(updates: 100, reads: 1_000).run(CountingGetTable())
        #expect(reads == 1_000)
        #expect(changed)
    }

    /// Every registered executor whose reads share (reader-writer locks, and what comes after).
    static let sharing = LockRegistry.all.filter { $0.readSharing == .shared }.map(\.descriptor.name)

    @Test("the reader-writer locks are registered as sharing reads")
    func testSharingExecutorsRegistered() {
        #expect(Self.sharing.contains("rwlock"))
        #expect(LockRegistry.all.filter { $0.descriptor.family == .readerWriter }.allSatisfy { $0.readSharing != .exclusive })
    }

    @Test("a reader-sharing executor shares reads; updates, reads and responses all check out (2 and 4 threads)",
          arguments: sharing, ["hashtable:keys=64:read-ratio=90", "list:keys=64:read-ratio=90", "hashtable:keys=64:read-ratio=50",
                               "snapshot:lines=4:read-ratio=90"])
    func testReaderWriterLockPassesTheReadChecks(lock: String, workload: String) throws {
        try ThreadSanitizer.skipIfBlind(lock)
        for threads in [2, 4] {
            try checkSharedReads(lock: lock, workload: workload, threads: threads)
        }
    }

    /// The variants a default-options run does not reach: the other inner locks of bravo and
    /// writer locks of c-rw-wp, per-node indicators, a one-slot BRAVO table (every reader of the
    /// lock contends for the slot), bias re-enabled at once (no inhibition).
    static let variants = ["brlock:per-node=1", "bravo:inner=pthread-rwlock-wp", "bravo:inner=rwlock",
                           "bravo:inner=pf-ticket", "bravo:inner=qrwlock", "bravo:table-slots=1",
                           "bravo:inhibit-multiplier=0", "c-rw-wp:writers=c-tkt-tkt", "c-rw-wp:writers=c-mcs-mcs",
                           "c-rw-wp:writers=hmcs"]

    @Test("reader-writer lock variants pass the read checks (2 and 4 threads)", arguments: variants)
    func testReaderWriterVariantsPassTheReadChecks(lock: String) throws {
        for threads in [2, 4] {
            try checkSharedReads(lock: lock, workload: "hashtable:keys=64:read-ratio=90", threads: threads)
        }
    }

    func checkSharedReads(lock: String, workload: String, threads: Int) throws {
        let entry = try LockSpec(parsing: lock).entry
        // Oversubscribed, a FIFO spin lock (pf-ticket) waits a time slice for a preempted
        // waiter's turn: a few thousand operations a second, so fewer operations there.
        let perThread = ThreadSanitizer.scaled(threads > Int(cshims_online_cpus()) ? 2_000 : 20_000)
        let result = try entry.run(try logged(lock, threads: threads, perThread: perThread), try WorkloadSpec(parsing: workload))
        #expect(result.status == .ok, "\(lock) at \(threads) threads on \(workload): \(result.failure ?? "")")
        let reads = result.threads.reduce(UInt64(0)) { $0 + $1.totalReads }
        #expect(reads > 0, "\(lock) at \(threads) threads on \(workload)")
        #expect(result.threads.allSatisfy { $0.readOverlaps == 0 })
        // The plain counter counts the updates only.
        #expect(result.counter == UInt64(threads * perThread) - reads)
        let summary = RunSummary(result)
        #expect(summary.reads == reads)
        #expect(summary.readLatency.samples > 0 && summary.updateLatency.samples > 0)
    }

    @Test("an exclusive executor applies reads as before and still reports them")
    func testExclusiveExecutorCountsReads() throws {
        let entry = try #require(LockRegistry.lookup("mcs"))
        #expect(entry.readSharing == .exclusive)
        let result = try entry.run(try logged("mcs", threads: 2, perThread: 10_000), try WorkloadSpec(parsing: "hashtable:keys=64:read-ratio=90"))
        #expect(result.status == .ok, "\(result.failure ?? "")")
        let reads = result.threads.reduce(UInt64(0)) { $0 + $1.totalReads }
        #expect(reads > 10_000 && reads < 20_000)
        #expect(result.counter == 20_000)
        #expect(result.threads.allSatisfy { $0.readOverlaps == 0 })
    }

    @Test("the version check catches readers let in beside a writer, at 2 threads",
          .enabled(if: !ThreadSanitizer.isActive, "races on purpose: ThreadSanitizer would report it"))
    func testVersionCheckCatchesReadersBesideAWriter() throws {
        // A read overlaps an update only when the scheduler runs both at once: up to twenty runs.
        let config = RunConfig(spec: try LockSpec(parsing: "ttas"), threads: slots(2),
                               length: .iterations(perThread: 200_000), sampleEvery: 0)
        var attempts = 0
        var result: RawRunResult
        repeat {
            attempts += 1
            let workload = HashTableWorkload(WorkloadEnvironment(threads: 2), keys: 16, readPercent: 50,
                                             outside: OutsideWork(nanoseconds: 0, random: false))
            result = try Harness.measure(executor: ReaderWriterExecutor<ReadersIgnoreWriterLock>.self, workload: workload, config: config)
        } while result.status == .ok && attempts < 20
        #expect(result.status == .mutexViolation, "no read overlapped an update in \(attempts) runs")
        #expect(result.failure?.contains("ran beside an update") == true, "\(result.failure ?? "")")
    }

    @Test("the reads check: a result no state of its window gives fails, one some state gives passes")
    func testReadWindowCheck() throws {
        let table = HashTableWorkload(WorkloadEnvironment(threads: 1), keys: 8, readPercent: 50,
                                      outside: OutsideWork(nanoseconds: 0, random: false))
        defer { table.deallocate() }
        let updates = [10, 20, 30].map { AppliedOperation(operation: Operation(code: ChainedHashTable.put, arg0: 1, arg1: $0), result: 0) }
        let get = Operation(code: ChainedHashTable.get, arg0: 1)
        func check(_ reads: [ObservedRead]) -> WorkloadCheck {
            updates.withUnsafeBufferPointer { Harness.readsFailure(table, updates: $0, reads: reads) }
        }
        // Versions 2 (one update done) to 4 (two done): the read may see 10 or 20.
        #expect(check([ObservedRead(operation: get, result: 20, versionBefore: 2, versionAfter: 4)]).passed)
        #expect(check([ObservedRead(operation: get, result: 10, versionBefore: 2, versionAfter: 4)]).passed)
        // Odd before: the second update was running, so 10 or 20; 30 came later.
        #expect(check([ObservedRead(operation: get, result: 20, versionBefore: 3, versionAfter: 3)]).passed)
        #expect(!check([ObservedRead(operation: get, result: 30, versionBefore: 3, versionAfter: 3)]).passed)
        // Nothing applied yet: empty; a value is a read from the future.
        #expect(check([ObservedRead(operation: get, result: emptyResult, versionBefore: 0, versionAfter: 0)]).passed)
        let future = check([ObservedRead(operation: get, result: 30, versionBefore: 0, versionAfter: 0)])
        #expect(future.failure?.contains("held at no point of its window") == true, "\(future.failure ?? "")")
        // After all three: only 30.
        #expect(check([ObservedRead(operation: get, result: 30, versionBefore: 6, versionAfter: 6)]).passed)
        #expect(!check([ObservedRead(operation: get, result: 20, versionBefore: 6, versionAfter: 6)]).passed)
        // A version beyond the updates applied.
        #expect(!check([ObservedRead(operation: get, result: 30, versionBefore: 8, versionAfter: 8)]).passed)
    }
}

/// A workload that checksums its shared memory when the run frees it (the harness consumes it).
final class ChecksumBox: @unchecked Sendable { var atStart: UInt64 = 0; var atEnd: UInt64 = 0 }
struct ChecksummedWorkload<W: Workload>: Workload {
    static var name: String { W.name }
    let base: W
    let box: ChecksumBox
    init(_ base: W, box: ChecksumBox) {
        self.base = base
        self.box = box
        box.atStart = checksum(base.sharedMemory())
    }
    var structure: W.Structure { base.structure }
    var record: UnsafeMutablePointer<HarnessRecord> { base.record }
    func makeThreadState(for thread: ThreadSlot, seed: UInt64) -> W.ThreadState { base.makeThreadState(for: thread, seed: seed) }
    func nextOperation(_ state: inout W.ThreadState) -> Operation { base.nextOperation(&state) }
    func completed(_ op: Operation, result: UInt64, _ state: inout W.ThreadState) { base.completed(op, result: result, &state) }
    func outsideCriticalSection(_ state: inout W.ThreadState) { base.outsideCriticalSection(&state) }
    func makeModel() -> W.Model { base.makeModel() }
    func invariantFailure(applied: UInt64) -> String? { base.invariantFailure(applied: applied) }
    func contents() -> [UInt64] { base.contents() }
    func sharedMemory() -> [UnsafeRawBufferPointer] { base.sharedMemory() }
    func deallocate() {
        box.atEnd = checksum(base.sharedMemory())
        base.deallocate()
    }
}

extension ReadSharingTests {
    @Test("reads measured under a reader-sharing executor leave the shared lines untouched: no harness store")
    func testHarnessWritesNothingSharedOnReads() throws {
        // Every operation a read (read-ratio 100), timed ones included (sampleEvery 1): the record's
        // counter, handover words and version, and the structure, must be byte-identical after
        // the run; only the lock's own memory (its reader count) may change.
        let box = ChecksumBox()
        let workload = ChecksummedWorkload(HashTableWorkload(WorkloadEnvironment(threads: 2), keys: 64, readPercent: 100,
                                                             outside: OutsideWork(nanoseconds: 0, random: false)), box: box)
        let config = RunConfig(spec: try LockSpec(parsing: "rwlock"), threads: (0..<2).map { ThreadSlot(index: $0, cpu: nil, node: 0) },
                               length: .iterations(perThread: 20_000), sampleEvery: 1)
        let result = try Harness.measure(executor: ReaderWriterExecutor<RWLock>.self, workload: workload, config: config)
        #expect(result.status == .ok, "\(result.failure ?? "")")
        #expect(result.threads.reduce(UInt64(0)) { $0 + $1.totalReads } == 40_000)
        #expect(box.atStart == box.atEnd, "the harness or the structure wrote a shared line during reads")
        // The same check can fail: an exclusive executor's target writes the record.
        let box2 = ChecksumBox()
        let workload2 = ChecksummedWorkload(HashTableWorkload(WorkloadEnvironment(threads: 2), keys: 64, readPercent: 100,
                                                              outside: OutsideWork(nanoseconds: 0, random: false)), box: box2)
        _ = try Harness.measure(executor: LockExecutor<RWLock>.self, workload: workload2, config: config)
        #expect(box2.atStart != box2.atEnd)
    }
}

extension ReadSharingTests {
    @Test("snapshot: a read of a half-written object returns torn, and a torn read fails the run")
    func testSnapshotTornReadIsCaught() throws {
        let workload = SnapshotWorkload(WorkloadEnvironment(threads: 2), lines: 2, readPercent: 50,
                                        outside: OutsideWork(nanoseconds: 0, random: false))
        defer { workload.deallocate() }
        let read = Operation(code: SnapshotObject.read)
        #expect(workload.structure.apply(Operation(code: SnapshotObject.update)) == 0)
        #expect(workload.structure.apply(read) == 1)
        #expect(workload.invariantFailure(applied: 2) == nil)
        // An update interrupted after word 5 of 16: a read beside it sees two versions.
        for i in 0..<6 { workload.structure.words[i] = 2 }
        let torn = workload.structure.apply(read)
        #expect(torn == snapshotTornResult)
        var state = workload.makeThreadState(for: ThreadSlot(index: 1, cpu: nil, node: 0), seed: 1)
        workload.completed(read, result: torn, &state)
        #expect(workload.tornReads == 1)
        #expect(workload.invariantFailure(applied: 2)?.contains("1 reads saw a torn object") == true)
    }

    @Test("a reader-writer lock that lets readers beside a writer tears snapshot reads, at 2 threads",
          .enabled(if: !ThreadSanitizer.isActive, "races on purpose: ThreadSanitizer would report it"))
    func testBrokenLockTearsSnapshot() throws {
        let config = RunConfig(spec: try LockSpec(parsing: "ttas"), threads: slots(2),
                               length: .iterations(perThread: 200_000), sampleEvery: 0)
        var attempts = 0
        var result: RawRunResult
        repeat {
            attempts += 1
            let workload = SnapshotWorkload(WorkloadEnvironment(threads: 2), lines: 16, readPercent: 50,
                                            outside: OutsideWork(nanoseconds: 0, random: false))
            result = try Harness.measure(executor: ReaderWriterExecutor<ReadersIgnoreWriterLock>.self, workload: workload, config: config)
        } while result.status == .ok && attempts < 20
        #expect(result.status != .ok, "no read overlapped an update in \(attempts) runs")
        // The workload's own check (torn reads, counted per thread) comes before the version check.
        #expect(result.failure?.contains("torn object") == true || result.failure?.contains("ran beside an update") == true,
                "\(result.failure ?? "")")
    }

    @Test("seqlock: retried reads return one version's object (window checks pass) at 2 and 4 threads")
    func testSeqlockReadsCheckOut() throws {
        let entry = try #require(LockRegistry.lookup("seqlock"))
        #expect(entry.readSharing == .optimistic)
        for threads in [2, 4] {
            let perThread = ThreadSanitizer.scaled(20_000)
            let result = try entry.run(try logged("seqlock", threads: threads, perThread: perThread),
                                       try WorkloadSpec(parsing: "snapshot:lines=8:read-ratio=90"))
            #expect(result.status == .ok, "seqlock at \(threads) threads: \(result.failure ?? "")")
            let reads = result.threads.reduce(UInt64(0)) { $0 + $1.totalReads }
            #expect(reads > 0)
            #expect(result.counter == UInt64(threads * perThread) - reads)
        }
    }

    @Test("seqlock on a structure whose reads must not see an update: refused in one line; read-free and snapshot pairs run")
    func testSeqlockPairingRefused() throws {
        let seqlock = try LockSpec(parsing: "seqlock")
        let table = try WorkloadSpec(parsing: "hashtable:read-ratio=90")
        let refusal = try #require(table.pairingRefusal(seqlock))
        #expect(!refusal.contains("\n") && refusal.contains("hashtable"))
        #expect(try WorkloadSpec(parsing: "hashtable:read-ratio=0").pairingRefusal(seqlock) == nil)
        #expect(try WorkloadSpec(parsing: "snapshot").pairingRefusal(seqlock) == nil)
        #expect(try WorkloadSpec(parsing: "queue").pairingRefusal(seqlock) == nil)
        #expect(table.pairingRefusal(try LockSpec(parsing: "rwlock")) == nil)
        #expect(throws: LabError.self) { try seqlock.entry.run(try logged("seqlock", threads: 1, perThread: 10), table) }
        // In a matrix the pair is left out, said in a note; a lock with no runnable pair is refused.
        let matrix = RunMatrix(locks: [seqlock, try LockSpec(parsing: "mcs")], threadCounts: [1],
                               workloads: [table, try WorkloadSpec(parsing: "snapshot")])
        #expect(matrix.plannedRunCount == 3 && matrix.plannedRuns.count == 3)
        #expect(matrix.pairingNotes.count == 1 && matrix.pairingNotes[0].hasPrefix("seqlock on hashtable:read-ratio=90 left out"))
        let alone = RunMatrix(locks: [seqlock], threadCounts: [1], workloads: [table])
        #expect(throws: LabError.self) { try alone.validate(on: try Topology.load(virtualNodes: 1)) }
    }
}
