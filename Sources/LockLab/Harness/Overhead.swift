// How much the harness itself costs: one thread, ck's fas lock, a bare C loop (lock, counter += 1,
// unlock) against the same lock through the harness, with latency sampling off and at the default.
// Repeated and interleaved; medians. This is a benchmark: it prints numbers, it asserts nothing.

import CCK
import CShims
import Foundation

public struct OverheadReport: Sendable {
    /// ns per iteration, median over repeats, by label.
    public var medians: [(label: String, nanosecondsPerOp: Double)]
}

public enum Overhead {
    /// Median ns/op of the bare C loop over `seconds`.
    static func bareLoop(seconds: Double) -> Double {
        let memory = LabMemory()
        let raw = memory.allocate(bytes: 256)
        let lock = raw.bindMemory(to: ck_spinlock_fas_t.self, capacity: 1)
        cck_fas_init(lock)
        let counter = (raw + 128).bindMemory(to: UInt64.self, capacity: 1)
        cck_bare_fas_loop(lock, counter, 1_000_000) // warm up
        var iterations: UInt64 = 0
        let start = CycleClock.monotonicNanoseconds()
        var now = start
        while Double(now - start) < seconds * 1e9 {
            cck_bare_fas_loop(lock, counter, 1_000_000)
            iterations += 1_000_000
            now = CycleClock.monotonicNanoseconds()
        }
        memory.deallocate(raw, bytes: 256)
        return Double(now - start) / Double(iterations)
    }

    /// Harness ns/op for `lock` at one thread pinned to `cpu`.
    static func harness(_ lock: String, sampleEvery: Int, seconds: Double, cpu: Int) throws -> Double {
        let spec = try LockSpec(parsing: lock)
        let config = RunConfig(spec: spec, threads: [ThreadSlot(index: 0, cpu: cpu, node: 0)], nodeCount: 1,
                               length: .timed(warmupSeconds: 0.05, measureSeconds: seconds), sampleEvery: sampleEvery)
        let summary = RunSummary(try spec.entry.run(config, MicrobenchmarkParameters(csLines: 0)))
        return summary.nanosecondsPerOp
    }

    public static func measure(repeats: Int = 5, seconds: Double = 0.3, cpu: Int = 0) throws -> OverheadReport {
        // The bare loop runs on the calling thread: pin it like the harness pins its thread.
        _ = cshims_pin_self_to_cpu(Int32(cpu))
        let labels = ["bare C loop, ck-fas", "harness ck-fas, no sampling", "harness ck-fas, sample every \(Harness.defaultSampleEvery)",
                      "harness no-lock, sample every \(Harness.defaultSampleEvery)"]
        var samples = Array(repeating: [Double](), count: labels.count)
        for _ in 0..<repeats {
            samples[0].append(bareLoop(seconds: seconds))
            samples[1].append(try harness("ck-fas", sampleEvery: 0, seconds: seconds, cpu: cpu))
            samples[2].append(try harness("ck-fas", sampleEvery: Harness.defaultSampleEvery, seconds: seconds, cpu: cpu))
            samples[3].append(try harness("no-lock", sampleEvery: Harness.defaultSampleEvery, seconds: seconds, cpu: cpu))
        }
        return OverheadReport(medians: zip(labels, samples).map { ($0, median($1)) })
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
