// Which CPU pairs the coherence probe measures, and running it over them.
//
// `--cpus A,B`: the full matrix (every state and operation) on that one pair.
// `--all-pairs` (the default): the full matrix on one pair per distance class the topology has
// (Topology.representativePairs), and for the heat map M-load and M-store on every other ordered
// pair with a quarter of the repetitions. On 16 CPUs: at most 6 matrix pairs and 234 heat-map
// pairs, a few seconds.

import Foundation

public struct CoherencePlan: Sendable, Equatable {
    /// Pairs measured on every (state, operation).
    public var matrixPairs: [ProbePair]
    /// Pairs measured on M load and M store only (the heat map).
    public var heatMapPairs: [ProbePair]

    /// The plan for `--cpus TEXT` (one pair) or, when `cpus` is nil, for all pairs.
    public static func make(on topology: Topology, cpus: String?) throws -> CoherencePlan {
        if let cpus {
            return CoherencePlan(matrixPairs: [try topology.probePair(parsing: cpus)], heatMapPairs: [])
        }
        let matrix = try topology.representativePairs()
        let measured = Set(matrix.map { [$0.owner, $0.timer] })
        let heat = try topology.allOrderedPairs().filter { !measured.contains([$0.owner, $0.timer]) }
        return CoherencePlan(matrixPairs: matrix, heatMapPairs: heat)
    }

    /// Repetitions for the heat-map pairs: a quarter of the matrix's, at least 100.
    public static func heatMapReps(_ reps: Int) -> Int { max(100, reps / 4) }
}

public struct CoherenceSurveyResult: Sendable {
    public var measurements: [CoherenceMeasurement]
    /// Counter-read overhead measured on each timing CPU (the last pair that timed on it).
    public var overheadByCPU: [Int: TimerOverhead]
    public var elapsedSeconds: Double
}

public enum CoherenceSurvey {
    /// Runs `plan` on this machine. `progress` is called before each matrix pair and every 16
    /// heat-map pairs. Throws `LabError` when a thread cannot be pinned or a self-check fails.
    public static func run(_ plan: CoherencePlan, reps: Int,
                           progress: (String) -> Void = { _ in }) throws -> CoherenceSurveyResult {
        let start = CycleClock.monotonicNanoseconds()
        var measurements: [CoherenceMeasurement] = []
        var overheads: [Int: TimerOverhead] = [:]
        for pair in plan.matrixPairs {
            progress("cpus \(pair.owner)->\(pair.timer) (\(pair.distance.rawValue)): \(CoherenceProbe.fullMatrix.count) states x operations, \(reps) reps each")
            let r = try CoherenceProbe.measure(owner: pair.owner, timer: pair.timer, distance: pair.distance,
                                               matrix: CoherenceProbe.fullMatrix, reps: reps)
            measurements += r.measurements
            overheads[pair.timer] = r.overhead
        }
        let heatReps = CoherencePlan.heatMapReps(reps)
        for (i, pair) in plan.heatMapPairs.enumerated() {
            if i % 16 == 0 {
                progress("heat map: pairs \(i + 1)-\(min(i + 16, plan.heatMapPairs.count)) of \(plan.heatMapPairs.count) (M load and store, \(heatReps) reps)")
            }
            let r = try CoherenceProbe.measure(owner: pair.owner, timer: pair.timer, distance: pair.distance,
                                               matrix: CoherenceProbe.heatMapMatrix, reps: heatReps)
            measurements += r.measurements
            overheads[pair.timer] = r.overhead
        }
        let elapsed = Double(CycleClock.monotonicNanoseconds() &- start) / 1e9
        return CoherenceSurveyResult(measurements: measurements, overheadByCPU: overheads, elapsedSeconds: elapsed)
    }
}
