// The handover ceiling: how fast two threads could pass a lock back and forth if the only cost were
// the cache lines that must move from the releaser to the next holder.
//
//   ceiling (handovers/s) = 1 / (lines moved per handover x transfer latency + cs time)
//
// The transfer latency is the probe's median store to a line Modified in the other CPU (state M,
// op store) between the two CPUs the run uses (or, without that exact pair, the median over the
// pairs of their distance class). `cs time` is the busy-wait inside the critical section
// (`--cs-ns`, 0 by default), serial like the transfers. Lines per handover = the lock's own lines
// on the handover's critical path (below) + the critical section's lines: the microbenchmark's
// `--cs-lines K`, K lines in all, the harness's record (plain counter, last holder) the first of
// them, so at least 1.
//
// The lock's own lines, at two threads with the other thread always waiting (its arrival, e.g. a
// ticket's fetch-add or an MCS tail swap, overlaps the holder's critical section):
//   test-and-set family  1  the lock word: the releaser's store, then the waiter's exchange takes it;
//   ticket family        1  the ticket block (next and owner share it): the releaser's store of
//                           owner, then the waiter's load;
//   anderson             1  the next waiter's slot flag, raised by the releaser;
//   clh                  1  the releaser's node, whose busy flag the successor spins on;
//   mcs family           2  the releaser's node (the successor wrote its `next`: the releaser must
//                           fetch it) and the successor's node (the releaser writes its `locked`);
//   cohort and NUMA locks built on an MCS queue: 2 at two threads on one node (the local queue
//   hands over; the global lock stays with the cohort); c-tkt-tkt: 1 (its local ticket lock).
//   qspinlock        1  the lock word (at two threads the waiter spins as `pending`, no queue node);
//   -stp variants    as their spinning lock, while the successor spins rather than sleeps.
// Kernel-assisted locks (pthread, futex, swift-mutex), shfl and null have no model: no ceiling.
// Each line is counted once, at one transfer latency: the least a handover can move. Real
// protocols move some lines twice (the releaser's read-for-ownership of a line the waiter spins on,
// then the waiter's read back) and add invalidations of shared copies, which is why locks sit
// below the ceiling; how far below is what the fraction says.
//
// A fraction above 1 is no contradiction: the ceiling bounds *handovers*, and an unfair lock at two
// threads re-grants itself to the same thread without moving a line (ck-fas, tas). The
// handover fraction (handovers/s over the ceiling) is the one that must stay at or below 1.

import Foundation

public enum HandoverModel {
    /// The lock's own lines on the handover's critical path, by lock name, with the reason.
    public static let lockLines: [String: (lines: Int, why: String)] = {
        var table: [String: (Int, String)] = [:]
        let tas = "the lock word: the releaser's store, then the waiter's exchange takes the line"
        for name in ["tas", "ttas", "backoff", "ck-fas", "pthread-spin"] { table[name] = (1, tas) }
        let ticket = "the ticket block (next and owner on one line): the releaser's store of owner, then the waiter's load"
        for name in ["ticket", "ck-ticket"] { table[name] = (1, ticket) }
        table["c-tkt-tkt"] = (1, "the local ticket lock's block (two threads on one node: the global lock stays with the cohort)")
        table["anderson"] = (1, "the next waiter's slot flag, raised by the releaser")
        let clh = "the releaser's node, whose busy flag the successor spins on"
        for name in ["clh", "ck-clh"] { table[name] = (1, clh) }
        table["clh-stp"] = (1, clh + " (while the successor still spins rather than sleeps)")
        let mcs = "the releaser's node (its next was written by the successor) and the successor's node (the releaser writes its locked flag)"
        for name in ["mcs", "ck-mcs"] { table[name] = (2, mcs) }
        table["mcs-stp"] = (2, mcs + " (while the successor still spins rather than sleeps)")
        let queue = "the local MCS queue at two threads on one node: the releaser's node (next) and the successor's node (locked flag)"
        for name in ["c-bo-mcs", "c-mcs-mcs", "cna", "hmcs", "malthusian"] { table[name] = (2, queue) }
        for name in ["cna-stp", "malthusian-stp"] {
            table[name] = (2, queue + " (while the successor still spins rather than sleeps)")
        }
        let pending = "the lock word: at two threads the waiter spins as `pending` on it and takes it at the releaser's store; no queue node"
        for name in ["qspinlock", "qspinlock-cna"] { table[name] = (1, pending) }
        return table
    }()

    /// Lines the harness itself moves per handover: its record (plain counter, last applier),
    /// which is the first of the workload's `cs-lines` (micro: `cs-lines K` is K lines in all).
    public static let harnessLines = 1

    /// Lines per handover of a lock with `csLines` micro lines (the harness record's included;
    /// 0 counts as 1), or nil when the lock has no model.
    public static func linesPerHandover(lock: String, csLines: Int) -> Int? {
        guard let own = lockLines[lock] else { return nil }
        return own.lines + max(harnessLines, csLines)
    }

    static let header = ["lock", "lock_lines", "harness_lines", "why"]

    /// handover_lines.csv: one row per modelled lock, sorted by name.
    static func rows() -> [[String]] {
        lockLines.keys.sorted().map { name in
            let entry = lockLines[name]!
            return [name, "\(entry.lines)", "\(harnessLines)", entry.why]
        }
    }
}

/// The handover ceiling of one lock at two threads on one pair of CPUs.
public struct HandoverCeiling: Sendable, Equatable {
    public var lock: String
    public var linesPerHandover: Int
    /// Median store-to-Modified latency between the two CPUs, ns.
    public var transferNanoseconds: Double
    public var criticalSectionNanoseconds: Double
    /// Where the transfer latency came from: "cpus 0,1 (same-l3)" or "same-l3 median".
    public var source: String

    /// Handovers per second the line transfers allow.
    public var handoversPerSecond: Double {
        1e9 / (Double(linesPerHandover) * transferNanoseconds + criticalSectionNanoseconds)
    }

    /// The median store-to-M latency for the pair (either orientation), else over its class.
    /// Nil when the file has neither.
    public static func transfer(in rows: [CoherenceMeasurement], cpus: (Int, Int),
                                distance: DistanceClass?) -> (nanoseconds: Double, source: String)? {
        let stores = rows.filter { $0.state == .modified && $0.operation == .store }
        let pair = stores.filter { ($0.cpuA == cpus.0 && $0.cpuB == cpus.1) || ($0.cpuA == cpus.1 && $0.cpuB == cpus.0) }
        if !pair.isEmpty {
            return (median(pair.map(\.medianNanoseconds)), "cpus \(cpus.0),\(cpus.1) (\(pair[0].distance.rawValue))")
        }
        if let distance {
            let sameClass = stores.filter { $0.distance == distance }
            if !sameClass.isEmpty {
                return (median(sameClass.map(\.medianNanoseconds)), "\(distance.rawValue) median")
            }
        }
        return nil
    }

    /// The ceiling for `lock` with the given workload, or nil when the lock has no model or the
    /// file no usable transfer latency.
    public static func make(lock: String, csLines: Int, csNanoseconds: Int, rows: [CoherenceMeasurement],
                            cpus: (Int, Int), distance: DistanceClass?) -> HandoverCeiling? {
        guard let lines = HandoverModel.linesPerHandover(lock: lock, csLines: csLines),
              let transfer = transfer(in: rows, cpus: cpus, distance: distance), transfer.nanoseconds > 0 else { return nil }
        return HandoverCeiling(lock: lock, linesPerHandover: lines, transferNanoseconds: transfer.nanoseconds,
                               criticalSectionNanoseconds: Double(max(0, csNanoseconds)), source: transfer.source)
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// The coherence.csv that belongs with results folder `directory`: DIR/coherence.csv, else the
    /// sibling DIR/../coherence/coherence.csv (results/<machine>/coherence beside the other runs).
    public static func findCoherenceFile(near directory: String) -> String? {
        let inside = (directory as NSString).appendingPathComponent(CoherenceFiles.csvName)
        let sibling = (((directory as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent("coherence") as NSString).appendingPathComponent(CoherenceFiles.csvName)
        for path in [inside, sibling] where FileManager.default.isReadableFile(atPath: path) { return path }
        return nil
    }
}
