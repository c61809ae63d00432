// The coherence probe's files: coherence.csv (tidy: one row per state, operation and CPU pair),
// handover_lines.csv (the lines-per-handover model of every lock, for the report's ceiling) and
// manifest.json (machine, build, topology, method, timer overhead, the pairs and why each).

import Foundation

public enum CoherenceFiles {
    public static let csvName = "coherence.csv"
    public static let linesName = "handover_lines.csv"
    public static let manifestName = "manifest.json"

    public static let header = ["state", "op", "cpu_a", "cpu_b", "distance", "reps", "min_ns", "median_ns", "p99_ns",
                                "min_cycles", "median_cycles", "p99_cycles", "overhead_cycles"]

    static func row(_ m: CoherenceMeasurement) -> [String] {
        [m.state.rawValue, m.operation.rawValue, "\(m.cpuA)", "\(m.cpuB)", m.distance.rawValue, "\(m.reps)",
         csvNumber(m.minNanoseconds, decimals: 2), csvNumber(m.medianNanoseconds, decimals: 2),
         csvNumber(m.p99Nanoseconds, decimals: 2), csvNumber(m.minCycles, decimals: 1),
         csvNumber(m.medianCycles, decimals: 1), csvNumber(m.p99Cycles, decimals: 1),
         csvNumber(m.overheadCycles, decimals: 1)]
    }

    /// Writes DIR/coherence.csv (replacing it: one probe run per folder) and DIR/handover_lines.csv.
    public static func write(_ measurements: [CoherenceMeasurement], to directory: String) throws {
        try Manifest.refuseReferenceFolder(directory)
        try createDirectory(directory)
        // Both through the lab's one CSV writer (RFC 4180).
        try writeFile(CSVFormat.table(header: header, rows: measurements.map(row)),
                      (directory as NSString).appendingPathComponent(csvName))
        try writeFile(CSVFormat.table(header: HandoverModel.header, rows: HandoverModel.rows()),
                      (directory as NSString).appendingPathComponent(linesName))
    }

    /// Reads a coherence.csv back. Throws one line for a missing file, a missing column or a bad row.
    public static func read(path: String) throws -> [CoherenceMeasurement] {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw LabError.io("--coherence: cannot read '\(path)'")
        }
        let (columns, rows) = try readCSV(path: path)
        for needed in ["state", "op", "cpu_a", "cpu_b", "distance", "reps", "median_ns"] where !columns.contains(needed) {
            throw LabError.io("--coherence: '\(path)' has no '\(needed)' column: not a coherence.csv")
        }
        var result: [CoherenceMeasurement] = []
        for (i, r) in rows.enumerated() {
            guard let state = CoherenceState(rawValue: r["state"] ?? ""),
                  let op = CoherenceOperation(rawValue: r["op"] ?? ""),
                  let a = Int(r["cpu_a"] ?? ""), let b = Int(r["cpu_b"] ?? ""),
                  let distance = DistanceClass(rawValue: r["distance"] ?? ""),
                  let reps = Int(r["reps"] ?? ""),
                  let median = Double(r["median_ns"] ?? ""), median.isFinite, median >= 0 else {
                throw LabError.io("--coherence: '\(path)' row \(i + 2) is not a valid coherence row")
            }
            // Stored in ns: keep them as ns by using 1 tick per ns when the cycles are not needed.
            let minNs = Double(r["min_ns"] ?? "") ?? median
            let p99Ns = Double(r["p99_ns"] ?? "") ?? median
            result.append(CoherenceMeasurement(
                state: state, operation: op, cpuA: a, cpuB: b, distance: distance, reps: reps,
                minCycles: minNs, medianCycles: median, p99Cycles: p99Ns,
                overheadCycles: 0, cyclesPerNanosecond: 1))
        }
        if result.isEmpty { throw LabError.io("--coherence: '\(path)' has no rows") }
        return result
    }

    static func createDirectory(_ directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw LabError.io("cannot create output folder \(directory): \(error.localizedDescription)")
        }
    }

    static func writeFile(_ text: String, _ path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
            throw LabError.io("cannot write \(path)")
        }
    }
}

/// manifest.json of a coherence folder.
public struct CoherenceManifest: Codable, Sendable {
    public struct Pair: Codable, Sendable {
        public var cpuA: Int
        public var cpuB: Int
        public var distance: String
        /// "matrix" (every state and operation) or "heat map" (M load and store only).
        public var measured: String
        enum CodingKeys: String, CodingKey {
            case cpuA = "cpu_a", cpuB = "cpu_b", distance, measured
        }
        public init(cpuA: Int, cpuB: Int, distance: String, measured: String) {
            self.cpuA = cpuA
            self.cpuB = cpuB
            self.distance = distance
            self.measured = measured
        }
    }

    public struct Method: Codable, Sendable {
        public var description: String
        public var reps: Int
        public var heatMapReps: Int
        public var lines: Int
        public var lineSpacingBytes: Int
        public var overheadSamples: Int
        public var overheadSubtracted: String
        public var timerOverheadMinCycles: [String: UInt64]
        public var timerOverheadMedianCycles: [String: UInt64]
        public var cycles: String
        enum CodingKeys: String, CodingKey {
            case description, reps, lines, cycles
            case heatMapReps = "heat_map_reps"
            case lineSpacingBytes = "line_spacing_bytes"
            case overheadSamples = "overhead_samples"
            case overheadSubtracted = "overhead_subtracted"
            case timerOverheadMinCycles = "timer_overhead_min_cycles_by_cpu"
            case timerOverheadMedianCycles = "timer_overhead_median_cycles_by_cpu"
        }
        public init(description: String, reps: Int, heatMapReps: Int, lines: Int, lineSpacingBytes: Int,
                    overheadSamples: Int, overheadSubtracted: String, timerOverheadMinCycles: [String: UInt64],
                    timerOverheadMedianCycles: [String: UInt64], cycles: String) {
            self.description = description
            self.reps = reps
            self.heatMapReps = heatMapReps
            self.lines = lines
            self.lineSpacingBytes = lineSpacingBytes
            self.overheadSamples = overheadSamples
            self.overheadSubtracted = overheadSubtracted
            self.timerOverheadMinCycles = timerOverheadMinCycles
            self.timerOverheadMedianCycles = timerOverheadMedianCycles
            self.cycles = cycles
        }
    }

    public var machine: MachineInfo
    public var build: BuildInfo
    public var topology: String
    public var method: Method
    public var pairs: [Pair]
    public var command: String
    public var utcStart: String
    public var elapsedSeconds: Double
    /// /proc/loadavg when the probe started: other work on the machine preempts the probe's threads.
    public var loadAverageAtStart: String

    enum CodingKeys: String, CodingKey {
        case machine, build, topology, method, pairs, command
        case utcStart = "utc_start"
        case elapsedSeconds = "elapsed_s"
        case loadAverageAtStart = "loadavg_at_start"
    }

    /// The first three fields of /proc/loadavg ("" where there is none).
    public static func loadAverage() -> String {
        guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "" }
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    public init(machine: MachineInfo, build: BuildInfo, topology: String, method: Method, pairs: [Pair],
                command: String, utcStart: String, elapsedSeconds: Double, loadAverageAtStart: String) {
        self.machine = machine
        self.build = build
        self.topology = topology
        self.method = method
        self.pairs = pairs
        self.command = command
        self.utcStart = utcStart
        self.elapsedSeconds = elapsedSeconds
        self.loadAverageAtStart = loadAverageAtStart
    }

    public static let methodText = "two threads pinned to cpu_a (puts the line into the state) and cpu_b (times one operation on it between lfence;rdtsc;lfence and rdtscp;lfence); M: cpu_a flushed and stored; E: cpu_a flushed and loaded; S: cpu_a flushed and loaded, then cpu_b loaded; I: cpu_b loaded, then cpu_a stored; a timed store is followed by mfence (waits until it is globally visible); CAS succeeds; the repetitions cycle through `lines` lines, one per 4 KiB page at different 128-byte offsets, in a fixed shuffled order; every operation's observed value is checked against the protocol"

    public func write(to directory: String) throws {
        try CoherenceFiles.createDirectory(directory)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(self)
        let path = (directory as NSString).appendingPathComponent(CoherenceFiles.manifestName)
        guard FileManager.default.createFile(atPath: path, contents: data + Data("\n".utf8)) else {
            throw LabError.io("cannot write \(path)")
        }
    }

    public static func read(path: String) -> CoherenceManifest? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(CoherenceManifest.self, from: data)
    }
}
