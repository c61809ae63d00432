// Latency sampling: a slow run (fewer acquisitions than the sampling interval) still reports
// latency percentiles, because each thread times every acquisition until it has
// Harness.minLatencySamples; a run that sampled nothing writes empty latency cells, never 0.

import Testing
@testable import LockLab

@Suite("Latency sampling")
struct LatencySamplingTests {
    private func run(iterations: Int, threads: Int = 2, sampleEvery: Int = 64) throws -> RunSummary {
        let spec = try LockSpec(parsing: "mcs")
        let config = RunConfig(
            spec: spec, threads: (0..<threads).map { ThreadSlot(index: $0, cpu: nil, node: 0) },
            length: .iterations(perThread: iterations), sampleEvery: sampleEvery)
        let raw = try spec.entry.run(config, MicrobenchmarkParameters(csLines: 1))
        #expect(raw.status == .ok)
        return RunSummary(raw)
    }

    private func row(_ summary: RunSummary, sampleEvery: Int = 64) throws -> [String: String] {
        let d = RunDescription(
            runID: "1", spec: try LockSpec(parsing: "mcs"), threads: summary.threads.count, placement: "compact",
            nodes: 1, virtualNodes: nil, oversubscribed: false, workload: .micro(MicrobenchmarkParameters(csLines: 1)),
            memNode: "local", durationSeconds: 0, warmupSeconds: 0, repeatIndex: 1, seed: 1,
            sampleEvery: sampleEvery, machine: "test", gitCommit: "abc")
        return Dictionary(uniqueKeysWithValues: zip(RunRecord.runColumns, RunRecord.runRow(d, summary)))
    }

    @Test func fewerAcquisitionsThanTheIntervalStillGiveLatency() throws {
        // 20 acquisitions per thread, interval 64: every one is timed (20 < minimum).
        let s = try run(iterations: 20)
        #expect(s.latency.samples == 40)
        #expect(s.threads.allSatisfy { $0.latency.samples == 20 })
        #expect(s.latency.p50 > 0 && s.latency.p99 >= s.latency.p50)
        let r = try row(s)
        #expect(r["lat_samples"] == "40")
        #expect(Double(r["lat_p99_ns"]!)! > 0)
    }

    @Test func pastTheMinimumEveryKthIsTimed() throws {
        let n = 32 + 64 * 10
        let s = try run(iterations: n, threads: 1)
        // The first 32, then one in 64 of the remaining 640.
        #expect(s.latency.samples == UInt64(Harness.minLatencySamples + 10))
    }

    @Test func noSampleGivesEmptyCellsNotZero() throws {
        for (iterations, every) in [(0, 64), (50, 0)] {
            let s = try run(iterations: iterations, threads: 1, sampleEvery: every)
            #expect(s.latency.samples == 0)
            let r = try row(s, sampleEvery: every)
            #expect(r["lat_samples"] == "0")
            for c in ["lat_p50_ns", "lat_p99_ns", "lat_p999_ns", "lat_max_ns"] {
                #expect(r[c] == "", "\(c) should be empty when nothing was sampled")
            }
        }
    }

    @Test func theManifestSaysHow() {
        let note = RunMatrix.samplingNote(64)
        #expect(note.contains("every acquisition until it has \(Harness.minLatencySamples) samples"))
        #expect(note.contains("every 64th") && note.contains("empty"))
    }
}
