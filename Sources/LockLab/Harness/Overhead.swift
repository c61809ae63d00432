// How much the harness itself costs: ck's fas lock in a bare C loop (lock, counter += 1, unlock)
// against the same lock through the harness (LockExecutor<CKFASLock> on micro with one shared line,
// the harness's record), with latency sampling off and at the default, at 1 and 2 threads pinned to
// CPUs 0 and 1. Repeated and interleaved; medians. ns/op is wall time over all threads' operations
// (1e9 / throughput), the same for both. This is a benchmark: it prints numbers, it asserts nothing.

import CCK
import CShims
import Foundation

public struct OverheadReport: Sendable {
    /// ns per operation, median over repeats, by label; `bareLabel` names the yardstick of each
    /// thread count.
    public var medians: [(label: String, threads: Int, nanosecondsPerOp: Double)]
}

public enum Overhead {
    /// ns/op of `threads` bare C loops around one ck fas lock, for `seconds`.
    static func bareLoop(threads: Int, seconds: Double, cpus: [Int]) throws -> Double {
        let memory = LabMemory()
        let raw = memory.allocate(bytes: 256)
        defer { memory.deallocate(raw, bytes: 256) }
        let lock = raw.bindMemory(to: ck_spinlock_fas_t.self, capacity: 1)
        cck_fas_init(lock)
        // The counter on its own line, as the harness's record is.
        let counter = (raw + 128).bindMemory(to: UInt64.self, capacity: 1)
        let group = ThreadGroup(slots: (0..<threads).map { ThreadSlot(index: $0, cpu: cpus[$0 % cpus.count], node: 0) })
        let lockAddress = UInt(bitPattern: lock)
        let counterAddress = UInt(bitPattern: counter)
        try group.start { slot, control in
            let lock = UnsafeMutablePointer<ck_spinlock_fas_t>(bitPattern: lockAddress)!
            let counter = UnsafeMutablePointer<UInt64>(bitPattern: counterAddress)!
            let progress = control.progress(slot.index)
            _ = control.arriveAndWait()
            var ops: UInt64 = 0
            while control.currentPhase() != GroupPhase.stop {
                cck_bare_fas_loop(lock, counter, 1_000)
                ops &+= 1_000
                if control.currentPhase() == GroupPhase.measure { cshims_u64_store_relaxed(progress, ops) }
            }
        }
        try group.waitUntilReady()
        group.setPhase(GroupPhase.warmup)
        Harness.sleepSeconds(0.05)
        let before = group.control.totalProgress()
        group.setPhase(GroupPhase.measure)
        let start = CycleClock.monotonicNanoseconds()
        Harness.sleepSeconds(seconds)
        let done = group.control.totalProgress()
        let end = CycleClock.monotonicNanoseconds()
        group.setPhase(GroupPhase.stop)
        _ = group.waitForFinish(stallTimeoutSeconds: 30)
        group.join()
        return Double(end - start) / Double(max(1, done &- before))
    }

    /// Harness ns/op for `lock` at `threads` threads pinned to `cpus`.
    static func harness(_ lock: String, threads: Int, sampleEvery: Int, seconds: Double, cpus: [Int]) throws -> Double {
        let spec = try LockSpec(parsing: lock)
        let config = RunConfig(spec: spec, threads: (0..<threads).map { ThreadSlot(index: $0, cpu: cpus[$0 % cpus.count], node: 0) },
                               nodeCount: 1, length: .timed(warmupSeconds: 0.05, measureSeconds: seconds), sampleEvery: sampleEvery)
        let summary = RunSummary(try spec.entry.run(config, MicrobenchmarkParameters(csLines: 1)))
        return summary.nanosecondsPerOp
    }

    /// Measures at each of `threadCounts` (threads pinned to `cpus`, wrapping round).
    public static func measure(repeats: Int = 5, seconds: Double = 0.3, cpus: [Int] = [0, 1],
                               threadCounts: [Int] = [1, 2]) throws -> OverheadReport {
        var labels: [(String, Int)] = []
        for t in threadCounts {
            labels.append(("bare C loop, ck-fas", t))
            labels.append(("harness ck-fas, no sampling", t))
            labels.append(("harness ck-fas, sample every \(Harness.defaultSampleEvery)", t))
            if t == 1 { labels.append(("harness no-lock, sample every \(Harness.defaultSampleEvery)", t)) }
        }
        var samples = Array(repeating: [Double](), count: labels.count)
        for _ in 0..<repeats {
            for (i, (label, t)) in labels.enumerated() {
                if label.hasPrefix("bare") {
                    samples[i].append(try bareLoop(threads: t, seconds: seconds, cpus: cpus))
                } else if label.hasPrefix("harness no-lock") {
                    samples[i].append(try harness("no-lock", threads: t, sampleEvery: Harness.defaultSampleEvery, seconds: seconds, cpus: cpus))
                } else {
                    let sample = label.hasSuffix("no sampling") ? 0 : Harness.defaultSampleEvery
                    samples[i].append(try harness("ck-fas", threads: t, sampleEvery: sample, seconds: seconds, cpus: cpus))
                }
            }
        }
        return OverheadReport(medians: zip(labels, samples).map { ($0.0, $0.1, median($1)) })
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
