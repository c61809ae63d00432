// Deferred reclamation for the RCU structures: a preallocated pool of fixed-size nodes, per-thread
// limbo lists, and the grace period between a node's retirement and its reuse (liburcu's
// defer_rcu model, urcu-defer-impl.h: a thread queues what it retires and, when its queue holds
// `batch` nodes, waits for one grace period and frees them all; `reclaim=sync` is test_urcu's
// writer loop, publish, synchronize_rcu, free, with a batch of one).
//
// Invariants, checked after every run (`accountingFailure`): every node of the pool is free, live
// in the structure or awaiting reclamation, exactly once; a free node is poisoned in every byte
// after its link word (`poison`), and stays so until it is allocated again (a store into a freed
// node breaks the poison); a retired node is poisoned only after a grace period that began after
// it was unlinked, so a reader that meets poison (the structures check every node they load)
// saw a node freed under it: the run fails.
// Memory is bounded: a thread's limbo list holds at most `batch` plus one update's retirements, and
// a thread whose limbo is full waits for a grace period before it goes on (so a stalled reader
// makes writers wait, which the grace-period latency shows, instead of growing memory).
// Who touches what: the free list, `writer` and the high-water mark only under the writer lock;
// a thread's limbo and ready lists only by that thread; `awaiting` by atomics.

import CShims
import Histogram

/// The poison a free node's words hold (0xdead... as liburcu's tests' `poison_free`).
public let rcuPoison: UInt64 = 0xDEAD_BEEF_DEAD_BEEF

/// How the RCU executors reclaim (`reclaim` and `batch` options).
public struct ReclamationSettings: Sendable, Equatable {
    /// Nodes a thread retires before it waits for a grace period and frees them.
    public let batch: Int
    public init(batch: Int) { self.batch = max(1, batch) }
}

/// What the reclaimer measured, all threads together (runs.csv: grace_periods_per_sec,
/// gp_p50_ns, gp_p99_ns, reclaim_hwm_objects, reclaim_hwm_bytes).
public struct ReclamationSummary: Sendable {
    /// Grace periods waited for in the measured phase (one per `synchronize`).
    public var gracePeriods: UInt64
    /// The latency of those waits, ns (p50, p99): from the call of synchronize to its return.
    public var gracePeriodLatency: LatencySummary
    /// Most nodes waiting for a grace period at once (every limbo list; whole run, warm-up included).
    public var awaitingHighWater: UInt64
    /// ... in bytes (nodes times the node size).
    public var awaitingHighWaterBytes: UInt64
}

/// The pool and the limbo lists of one RCU structure (one per run).
public struct RCUReclaimer {
    /// Words of the shared line (writer-protected) and of each thread's line.
    @usableFromInline enum Shared { static let freeHead = 0, freeCount = 1, writer = 2, highWater = 3, awaiting = 16 }
    @usableFromInline enum PerThread {
        static let limboHead = 0, limboTail = 1, limboCount = 2, readyHead = 3, readyTail = 4, readyCount = 5, gracePeriods = 6
    }

    @usableFromInline let shared: UnsafeMutablePointer<UInt64>
    @usableFromInline let perThread: ReaderLines
    /// One histogram per thread (cycles of each synchronize), touched only by its thread.
    @usableFromInline let histograms: UnsafeMutablePointer<Histogram<UInt64>>
    public let pool: UnsafeMutableRawPointer
    /// Bytes per node (a multiple of 8, at least 16): word 0 is the reclaimer's link, never read
    /// by a reader; the rest is the structure's.
    public let nodeBytes: Int
    public let capacity: Int
    public let settings: ReclamationSettings
    let threads: Int
    let memory: LabMemory

    /// Nodes the pool needs: `live` at most in the structure at once, `perUpdate` allocated or
    /// retired by one update at most, and per thread a limbo and a ready list of up to
    /// `batch + perUpdate` each.
    public static func capacity(live: Int, perUpdate: Int, threads: Int, settings: ReclamationSettings) -> Int {
        live + perUpdate + threads * 2 * (settings.batch + perUpdate)
    }

    /// A pool of `capacity` nodes of `nodeBytes`, every one free and poisoned. Throws
    /// `LabError.impossible` when it would exceed 4 GiB (a smaller `batch` or structure fits).
    public init(nodeBytes: Int, capacity: Int, threads: Int, settings: ReclamationSettings, memory: LabMemory) throws {
        precondition(nodeBytes >= 16 && nodeBytes % 8 == 0)
        let bytes = nodeBytes * capacity
        guard bytes <= 4 << 30 else {
            throw LabError.impossible("the RCU pool would take \(bytes >> 20) MiB (\(capacity) nodes of \(nodeBytes) bytes: the structure, and per thread two lists of batch=\(settings.batch)); lower batch")
        }
        self.nodeBytes = nodeBytes
        self.capacity = capacity
        self.settings = settings
        self.threads = max(1, threads)
        self.memory = memory
        shared = memory.allocate(bytes: 2 * LabMemory.alignment).bindMemory(to: UInt64.self, capacity: 32)
        shared.initialize(repeating: 0, count: 32)
        perThread = ReaderLines(count: self.threads, memory: memory)
        histograms = .allocate(capacity: self.threads)
        for i in 0..<self.threads {
            (histograms + i).initialize(to: Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 300_000_000_000,
                                                               numberOfSignificantValueDigits: .three))
        }
        pool = memory.allocate(bytes: bytes)
        // Every node free: poisoned, linked in address order.
        var head: UInt64 = 0
        for i in stride(from: capacity - 1, through: 0, by: -1) {
            let node = pool + i * nodeBytes
            Self.poison(node, nodeBytes)
            node.storeBytes(of: head, as: UInt64.self)
            head = UInt64(UInt(bitPattern: node))
        }
        shared[Shared.freeHead] = head
        shared[Shared.freeCount] = UInt64(capacity)
    }

    @inline(__always) @usableFromInline
    static func poison(_ node: UnsafeMutableRawPointer, _ bytes: Int) {
        // Relaxed atomic stores: a broken flavour's reader may still load these words.
        var p = (node + 8).assumingMemoryBound(to: UInt64.self)
        let end = (node + bytes).assumingMemoryBound(to: UInt64.self)
        while p < end {
            cshims_u64_store_relaxed(p, rcuPoison)
            p += 1
        }
    }

    @inline(__always) @usableFromInline
    func line(_ thread: Int) -> UnsafeMutablePointer<UInt64> { perThread.word(thread) }

    // MARK: under the writer lock

    /// The writer lock taken by `thread`: its ready nodes (past their grace period) go back to the
    /// free list, and what the update retires goes to its limbo.
    @inline(__always)
    public func beginUpdate(thread: Int) {
        shared[Shared.writer] = UInt64(thread)
        let mine = line(thread)
        let n = mine[PerThread.readyCount]
        if n != 0 {
            // Splice: the ready list's tail links to the free list's head.
            UnsafeMutableRawPointer(bitPattern: UInt(mine[PerThread.readyTail]))!.storeBytes(of: shared[Shared.freeHead], as: UInt64.self)
            shared[Shared.freeHead] = mine[PerThread.readyHead]
            shared[Shared.freeCount] &+= n
            mine[PerThread.readyHead] = 0
            mine[PerThread.readyTail] = 0
            mine[PerThread.readyCount] = 0
        }
    }

    /// A free node (poisoned past its link word), or nil when the pool is empty: the capacity
    /// rule makes that impossible unless a thread leaks nodes. Under the writer lock.
    @inline(__always)
    public func allocate() -> UnsafeMutableRawPointer? {
        let head = shared[Shared.freeHead]
        guard let node = UnsafeMutableRawPointer(bitPattern: UInt(head)) else { return nil }
        shared[Shared.freeHead] = node.load(as: UInt64.self)
        shared[Shared.freeCount] &-= 1
        return node
    }

    /// Gives back a node that was never published (no reader can hold it). Under the writer lock.
    @inline(__always)
    public func freeUnpublished(_ node: UnsafeMutableRawPointer) {
        Self.poison(node, nodeBytes)
        node.storeBytes(of: shared[Shared.freeHead], as: UInt64.self)
        shared[Shared.freeHead] = UInt64(UInt(bitPattern: node))
        shared[Shared.freeCount] &+= 1
    }

    /// Retires `node`, unlinked by the update running now: freed after a grace period. Under the
    /// writer lock.
    @inline(__always)
    public func retire(_ node: UnsafeMutableRawPointer) {
        let mine = line(Int(shared[Shared.writer]))
        let address = UInt64(UInt(bitPattern: node))
        node.storeBytes(of: UInt64(0), as: UInt64.self)
        if let tail = UnsafeMutableRawPointer(bitPattern: UInt(mine[PerThread.limboTail])) {
            tail.storeBytes(of: address, as: UInt64.self)
        } else {
            mine[PerThread.limboHead] = address
        }
        mine[PerThread.limboTail] = address
        mine[PerThread.limboCount] &+= 1
        let awaiting = cshims_u64_fetch_add_relaxed(shared + Shared.awaiting, 1) &+ 1
        if awaiting > shared[Shared.highWater] { shared[Shared.highWater] = awaiting }
    }

    // MARK: on the thread, outside the writer lock

    /// After the thread's update: if its limbo holds `batch` nodes (or `atLeast`), waits for a
    /// grace period and moves them to its ready list, poisoned.
    @inline(__always)
    public func reclaim<F: RCUFlavor>(thread: Int, flavor: F, reader: inout F.Reader, atLeast: Int? = nil) {
        let mine = line(thread)
        let count = mine[PerThread.limboCount]
        if count == 0 || count < UInt64(atLeast ?? settings.batch) { return }
        waitAndMove(thread: thread, flavor: flavor, reader: &reader)
    }

    @inline(never) @usableFromInline
    func waitAndMove<F: RCUFlavor>(thread: Int, flavor: F, reader: inout F.Reader) {
        let mine = line(thread)
        let start = cshims_cycles()
        flavor.synchronize(&reader)
        _ = histograms[thread].record(max(1, cshims_cycles() &- start))
        mine[PerThread.gracePeriods] &+= 1
        // Past the grace period: nothing can reach these nodes. Poison, then onto the ready list.
        var p = mine[PerThread.limboHead]
        while let node = UnsafeMutableRawPointer(bitPattern: UInt(p)) {
            let next = node.load(as: UInt64.self)
            Self.poison(node, nodeBytes)
            p = next
        }
        let n = mine[PerThread.limboCount]
        if let readyTail = UnsafeMutableRawPointer(bitPattern: UInt(mine[PerThread.readyTail])) {
            readyTail.storeBytes(of: mine[PerThread.limboHead], as: UInt64.self)
        } else {
            mine[PerThread.readyHead] = mine[PerThread.limboHead]
        }
        mine[PerThread.readyTail] = mine[PerThread.limboTail]
        mine[PerThread.readyCount] &+= n
        mine[PerThread.limboHead] = 0
        mine[PerThread.limboTail] = 0
        mine[PerThread.limboCount] = 0
        _ = cshims_u64_fetch_add_relaxed(shared + Shared.awaiting, 0 &- n)
    }

    /// The measured phase begins on `thread`: its grace periods count from here.
    public func measurementStarts(thread: Int) {
        line(thread)[PerThread.gracePeriods] = 0
        histograms[thread].reset()
    }

    /// Every thread's figures (after the run).
    public func summary() -> ReclamationSummary {
        var merged = histograms[0]
        for i in 1..<threads { merged.add(histograms[i]) }
        let gps = (0..<threads).reduce(UInt64(0)) { $0 &+ line($1)[PerThread.gracePeriods] }
        let hwm = shared[Shared.highWater]
        return ReclamationSummary(gracePeriods: gps, gracePeriodLatency: LatencySummary(merged),
                                  awaitingHighWater: hwm, awaitingHighWaterBytes: hwm &* UInt64(nodeBytes))
    }

    /// Nodes retired and still waiting for their grace period (every limbo list), now.
    public var awaiting: UInt64 { cshims_u64_load_relaxed(shared + Shared.awaiting) }
    var readyNodes: UInt64 { (0..<threads).reduce(UInt64(0)) { $0 &+ line($1)[PerThread.readyCount] } }

    /// After the run (no thread running): the pool's accounting with `live` nodes in the
    /// structure, and the poison of every free node. nil when both hold.
    public func accountingFailure(live: Int) -> String? {
        let free = Int(shared[Shared.freeCount])
        let limbo = (0..<threads).reduce(0) { $0 + Int(line($1)[PerThread.limboCount]) }
        let ready = Int(readyNodes)
        if free + live + limbo + ready != capacity {
            return "the RCU pool holds \(capacity) nodes, but \(free) are free, \(live) live, \(limbo) awaiting a grace period and \(ready) past one: \(capacity - free - live - limbo - ready) lost or counted twice"
        }
        var p = shared[Shared.freeHead]
        var seen = 0
        while let node = UnsafeMutableRawPointer(bitPattern: UInt(p)), seen <= free {
            let words = (node + 8).assumingMemoryBound(to: UInt64.self)
            for w in 0..<(nodeBytes / 8 - 1) where words[w] != rcuPoison {
                return "a free node of the RCU pool has word \(w + 1) = \(words[w]), not the poison: a store into a node after it was freed"
            }
            p = node.load(as: UInt64.self)
            seen += 1
        }
        if seen != free { return "the RCU pool's free list has \(seen) nodes, its count says \(free)" }
        return nil
    }

    public func deallocate() {
        memory.deallocate(pool, bytes: nodeBytes * capacity)
        for i in 0..<threads { (histograms + i).deinitialize(count: 1) }
        histograms.deallocate()
        perThread.deallocate(memory)
        memory.deallocate(UnsafeMutableRawPointer(shared), bytes: 2 * LabMemory.alignment)
    }
}

/// An RCU structure's domain: its flavour and its reclaimer, made with the structure (which knows
/// its node size and how many nodes can be live) and shared with the executor that runs it.
public struct RCUDomain<Flavor: RCUFlavor> {
    public let flavor: Flavor
    public let reclaimer: RCUReclaimer

    public init(threads: Int, memory: LabMemory, options: LockOptions, nodeBytes: Int, live: Int, perUpdate: Int) throws {
        let settings = ReclamationSettings(batch: options.int("batch"))
        flavor = try Flavor(threads: threads, memory: memory, options: options)
        do {
            reclaimer = try RCUReclaimer(nodeBytes: nodeBytes,
                                         capacity: RCUReclaimer.capacity(live: live, perUpdate: perUpdate, threads: threads, settings: settings),
                                         threads: threads, settings: settings, memory: memory)
        } catch {
            flavor.deallocate()
            throw error
        }
    }

    public func deallocate() {
        reclaimer.deallocate()
        flavor.deallocate()
    }
}
