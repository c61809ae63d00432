// Shards: an experiment's matrix cut into N parts for N machines (a Slurm job array), merged back
// into one results folder afterwards (ShardMerge).
//
// - The unit of the cut is the curve: one lock, workload and placement over all its thread counts
//   and repeats. A curve is never split: it is measured on one machine, so a curve's points share
//   that machine's slow phases, firmware and frequency (the lesson of artifacts that spread whole
//   experiments over nodes).
// - The cut is deterministic: curves in the matrix's own order (workload, placement, lock), each
//   weighted by its expected run time in whole milliseconds, assigned longest first (ties in that
//   order) to the least loaded shard (ties to the lowest shard): Graham's LPT rule, within 4/3 of the
//   best balance. No clock, host name or random number enters it, so the same file and N give the
//   same cut on every machine whose thread counts give the curves the same weights; a shard records
//   its cut's fingerprint and `merge` refuses shards cut differently.
// - Shard I of N (1-based) runs into DIR/shards/I/, an ordinary resumable results folder, plus
//   shard.json: the plan it ran (its curves and every planned config key), which `merge` checks.

import Foundation

/// Which shard of how many: `--shard I/N`, 1 <= I <= N.
public struct ShardSelector: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// The most shards a sweep may be cut into (a job array of 10,000 tasks is already beyond
    /// what clusters allow by default: Slurm's MaxArraySize is 1001).
    public static let maxCount = 10_000

    public init(index: Int, count: Int) throws {
        guard (1...Self.maxCount).contains(count), (1...count).contains(index) else {
            throw LabError.badValue(flag: "--shard", value: "\(index)/\(count)",
                                    accepted: "I/N with 1 <= I <= N <= \(Self.maxCount)")
        }
        self.index = index
        self.count = count
    }

    /// Parses "I/N", e.g. "2/8"; throws one line naming the value.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw LabError.badValue(flag: "--shard", value: text, accepted: "I/N, e.g. 2/8 (shard 2 of 8, 1-based)")
        }
        try self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// The shard's folder inside a sharded sweep's folder: DIR/shards/I.
    public func directory(in out: String) -> String {
        (out as NSString).appendingPathComponent("shards/\(index)")
    }
}

/// The cut of a matrix into shards.
public struct ShardCut: Sendable, Equatable {
    /// One curve of the matrix and its place in the cut.
    public struct Curve: Sendable, Equatable {
        /// The curve's identity: lock label, placement and workload (RunMatrix.curveKey).
        public let key: String
        /// Runs the curve holds on this machine (thread counts x repeats).
        public let runs: Int
        /// Expected run time, ms: runs x (warm-up + duration + `perRunOverheadSeconds`).
        public let expectedMilliseconds: Int
        /// The shard it belongs to, 1-based.
        public let shard: Int
    }

    /// Set-up and write time of one run beyond its warm-up and measured phase, s (thread creation,
    /// pinning, per-thread contexts, the fsynced rows): a rough constant; it only weighs curves
    /// that differ in run count against each other.
    public static let perRunOverheadSeconds = 0.1

    public let shards: Int
    /// Every curve of the matrix, in the matrix's order (workload, placement, lock).
    public let curves: [Curve]

    /// Cuts `matrix` into `shards` parts (see the file's opening comment for the rule).
    public init(matrix: RunMatrix, shards: Int) {
        var all = matrix
        all.curveFilter = nil
        var order: [String] = []
        var runs: [String: Int] = [:]
        for run in all.plannedRuns(repeatsOnly: 1) {
            let key = all.curveKey(run)
            if runs[key] == nil { order.append(key) }
            runs[key, default: 0] += max(1, matrix.repeats)
        }
        let perRun = matrix.warmupSeconds + matrix.durationSeconds + Self.perRunOverheadSeconds
        let weights = order.map { Int((Double(runs[$0]!) * perRun * 1000).rounded()) }
        // LPT: heaviest first, ties in matrix order; each to the least loaded shard, ties lowest.
        let byWeight = order.indices.sorted { weights[$0] != weights[$1] ? weights[$0] > weights[$1] : $0 < $1 }
        var load = [Int](repeating: 0, count: max(1, shards))
        var shardOf = [Int](repeating: 0, count: order.count)
        for i in byWeight {
            let target = load.indices.min { load[$0] != load[$1] ? load[$0] < load[$1] : $0 < $1 }!
            shardOf[i] = target + 1
            load[target] += weights[i]
        }
        self.shards = shards
        self.curves = order.indices.map {
            Curve(key: order[$0], runs: runs[order[$0]]!, expectedMilliseconds: weights[$0], shard: shardOf[$0])
        }
    }

    /// The curves of shard `index` (1-based), in the matrix's order.
    public func curves(of index: Int) -> [Curve] { curves.filter { $0.shard == index } }

    /// Expected run time of shard `index`, s.
    public func expectedSeconds(of index: Int) -> Double {
        Double(curves(of: index).reduce(0) { $0 + $1.expectedMilliseconds }) / 1000
    }

    /// What identifies the cut (which curve goes to which shard, and N): 16 hex digits. Equal on
    /// every machine that makes the same cut; `merge` refuses shards whose fingerprints differ.
    public var fingerprint: String {
        shardFNV1a64Hex((["shards \(shards)"] + curves.map { "\($0.shard) \($0.key)" }).joined(separator: "\n"))
    }
}

/// DIR/shards/I/shard.json: what a shard was asked to run. Written before its first run (and
/// again on resume, refusing a different cut); `merge` reads it to know when a shard is complete.
public struct ShardPlan: Codable, Sendable, Equatable {
    public var experiment: String
    /// The experiment file as given on the command line, and a digest of its bytes (16 hex digits).
    public var file: String
    public var fileDigest: String
    public var shard: Int
    public var shards: Int
    public var cutFingerprint: String
    /// The figures the experiment file asks for (the merged report draws them).
    public var figures: [String]?
    /// This shard's curves (RunMatrix.curveKey) and every run they hold (config keys), in run order.
    public var curves: [String]
    public var planned: [String]
    /// Expected run time of this shard, s.
    public var expectedSeconds: Double

    enum CodingKeys: String, CodingKey {
        case experiment, file, shard, shards, figures, curves, planned
        case fileDigest = "file_digest"
        case cutFingerprint = "cut_fingerprint"
        case expectedSeconds = "expected_s"
    }

    public static let fileName = "shard.json"

    /// The plan in `directory`, nil if there is none; throws if there is one that cannot be read.
    public static func read(in directory: String) throws -> ShardPlan? {
        let path = (directory as NSString).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do { return try JSONDecoder().decode(ShardPlan.self, from: data) } catch {
            throw LabError.io("\(path) is not a LockLab shard plan")
        }
    }

    /// Writes the plan into `directory` (created if missing), atomically.
    public func write(in directory: String) throws {
        try Manifest.createFolder(directory)
        let path = (directory as NSString).appendingPathComponent(Self.fileName)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeAtomically(try encoder.encode(self) + Data("\n".utf8), to: path)
    }

    /// A digest of a file's bytes (16 hex digits of FNV-1a), "" if it cannot be read.
    public static func digest(ofFile path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return shardFNV1a64Hex(String(decoding: data, as: UTF8.self))
    }
}

extension RunMatrix {
    /// A curve's identity: lock label, placement and workload (everything of the configuration
    /// key but the thread count, the repeat and what the whole matrix shares).
    public func curveKey(_ run: PlannedRun) -> String {
        // The configuration key of the curve's run at 0 threads, repeat 0, without the fields every
        // run of the matrix shares: [label, t, placement, vn, workload..., mem, d, r].
        let probe = PlannedRun(spec: run.spec, threads: 0, workload: run.workload, placement: run.placement, repeatIndex: 0)
        let parts = RunDescription.configKey(spec: probe.spec, threads: 0, placement: probe.placement.description,
                                             virtualNodes: nil, workload: probe.workload, memNode: "",
                                             durationSeconds: 0, repeatIndex: 0)
            .split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 7 else { return parts.joined(separator: "|") }
        return ([parts[0], parts[2]] + parts[4..<(parts.count - 3)]).joined(separator: "|")
    }

    /// The planned runs of the first `repeatsOnly` repeats (the cut counts runs per curve).
    func plannedRuns(repeatsOnly: Int) -> [PlannedRun] {
        var one = self
        one.repeats = repeatsOnly
        one.shuffleSeed = nil
        return one.plannedRuns
    }

    /// The matrix restricted to shard `selector` of `cut`.
    public func restricted(to selector: ShardSelector, of cut: ShardCut) -> RunMatrix {
        var shard = self
        shard.curveFilter = Set(cut.curves(of: selector.index).map(\.key))
        return shard
    }
}

/// Writes `data` to `path` by way of a temporary file and a rename: readers see the old file or
/// the new one, never half of one.
func writeAtomically(_ data: Data, to path: String) throws {
    let tmp = path + ".tmp"
    guard FileManager.default.createFile(atPath: tmp, contents: data) else { throw LabError.io("cannot write \(tmp)") }
    guard rename(tmp, path) == 0 else { throw LabError.io("cannot replace \(path): \(String(cString: strerror(errno)))") }
}

/// 64-bit FNV-1a of the UTF-8 bytes, as 16 hex digits: an identifier, not a security measure.
func shardFNV1a64Hex(_ text: String) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}
