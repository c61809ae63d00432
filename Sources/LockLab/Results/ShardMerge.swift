// `locklab merge DIR`: a sharded sweep's shards (DIR/shards/I/, each an ordinary results folder
// with its plan, shard.json) gathered into DIR/runs.csv, DIR/threads.csv and DIR/manifest.json, an
// ordinary results folder that `report` reads like any other.
//
// What it checks before writing anything:
// - every shard 1...N is there and complete (every run of its plan recorded, whatever its status);
//   otherwise one line names each missing or incomplete shard, and nothing is written, unless
//   `partial`: then the runs the shards did record are merged, and the manifest's `partial` names
//   what is missing (the report says the folder is partial); merging again once they are done
//   gives the complete folder;
// - every shard was cut the same way from the same file (the plan's file digest, N and cut);
// - one build: shards of different builds are refused (no override: one build is the point);
// - one machine and topology, unless `allowMixing`: then each row keeps its own `machine` column
//   and the manifest lists every shard's machine, so nothing downstream takes two machines for one;
// - every planned run exactly once: no row outside a shard's plan, no configuration twice.
// The output depends only on the shards: rows in shard order, each shard's in its own order, run
// ids renumbered from 1, no time of merging recorded. Merging again gives the same bytes, and
// merging after a shard that was missing has finished gives the folder a complete first merge would.

import Foundation

/// One shard's part of a merged folder's manifest.
public struct ShardManifest: Codable, Sendable {
    public var shard: Int
    public var shards: Int
    /// Rows this shard contributed to runs.csv.
    public var runs: Int
    public var machine: MachineInfo
    public var build: BuildInfo
    public var topology: String
    public var invocations: [Manifest.Invocation]
}

public enum ShardMerge {
    /// What a merge wrote.
    public struct Outcome: Sendable {
        public var shards: Int
        public var runs: Int
        public var threadRows: Int
        /// Runs recorded with a status other than ok (hung, failed, mutex-violation).
        public var notOK: Int
        /// Distinct machines (host names) among the shards, in shard order.
        public var machines: [String]
        /// The experiment's figures, from the shards' plans.
        public var figures: [String]?
        /// A partial merge: the shards missing or unfinished, in words (empty: complete).
        public var missing: [String] = []
    }

    /// Merges `directory`/shards/* into `directory`. Throws one-line `LabError`s (see the file's
    /// opening comment for every check); writes nothing unless every check passes.
    public static func merge(directory: String, allowMixing: Bool = false, partial: Bool = false) throws -> Outcome {
        let shardsDir = (directory as NSString).appendingPathComponent("shards")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: shardsDir)) ?? []
        var plans: [Int: ShardPlan] = [:]
        for name in names.sorted() {
            guard let i = Int(name), String(i) == name else { continue }
            if let plan = try ShardPlan.read(in: (shardsDir as NSString).appendingPathComponent(name)) { plans[i] = plan }
        }
        guard let first = plans.keys.min().flatMap({ plans[$0] }) else {
            throw LabError.impossible("\(shardsDir) holds no shard (run `locklab sweep FILE --shard I/N --out \(directory)` for each I)")
        }
        let n = first.shards
        let hint = "`locklab sweep \(first.file) --shard I/\(n) --out \(directory)` runs or resumes shard I"
        for (i, plan) in plans.sorted(by: { $0.key < $1.key }) {
            if i > n || plan.shard != i || plan.shards != n {
                throw LabError.impossible("\(shardsDir)/\(i) holds shard \(plan.shard)/\(plan.shards), not shard \(i)/\(n); use one output folder per sharded sweep")
            }
            if plan.fileDigest != first.fileDigest || plan.cutFingerprint != first.cutFingerprint {
                throw LabError.impossible("shard \(i)/\(n) was cut from \(plan.file) (digest \(plan.fileDigest), cut \(plan.cutFingerprint)), shard \(first.shard)/\(n) from \(first.file) (digest \(first.fileDigest), cut \(first.cutFingerprint)): shards of one sweep need one file, one N and machines that give its curves the same weights")
            }
        }

        // Completeness: every shard there, every planned run recorded.
        var problems: [String] = []
        var rows: [Int: (header: [String], rows: [[String: String]])] = [:]
        for i in 1...n {
            guard let plan = plans[i] else { problems.append("shard \(i)/\(n) missing"); continue }
            let dir = (shardsDir as NSString).appendingPathComponent("\(i)")
            let runsPath = (dir as NSString).appendingPathComponent("runs.csv")
            let table: (header: [String], rows: [[String: String]]) =
                FileManager.default.fileExists(atPath: runsPath) ? try readCSV(path: runsPath) : ([], [])
            let recorded = Set(table.rows.compactMap { $0["config_key"] })
            let done = plan.planned.filter { recorded.contains($0) }.count
            if done < plan.planned.count {
                problems.append("shard \(i)/\(n) incomplete (\(done) of \(plan.planned.count) runs)")
            } else if !plan.planned.isEmpty && Manifest.read(in: dir) == nil {
                problems.append("shard \(i)/\(n) has no readable manifest.json")
            }
            rows[i] = table
        }
        if !problems.isEmpty && !partial {
            throw LabError.impossible("\(directory): \(problems.joined(separator: ", ")); finish them (\(hint)) and merge again, or merge what is there with --partial")
        }

        // Shards that ran something have a manifest; one with an empty plan (N > curves) may not.
        var manifests: [Int: Manifest] = [:]
        for i in 1...n {
            if let m = Manifest.read(in: (shardsDir as NSString).appendingPathComponent("\(i)")) { manifests[i] = m }
        }
        guard let reference = manifests.keys.min().flatMap({ manifests[$0] }), let refIndex = manifests.keys.min() else {
            throw LabError.impossible("\(directory): no shard ran anything (every plan is empty); nothing to merge")
        }
        for (i, m) in manifests.sorted(by: { $0.key < $1.key }) where i != refIndex {
            // The folder check's own comparisons (Manifest.conflict), one aspect at a time.
            if let why = reference.conflict(machine: reference.machine, build: m.build, topology: reference.topology) {
                throw LabError.impossible("refusing to merge different builds: shard \(refIndex)/\(n) holds results of \(why) (shard \(i)/\(n)); run every shard with one build")
            }
            if !allowMixing {
                if let why = reference.conflict(machine: m.machine, build: reference.build, topology: reference.topology) {
                    throw LabError.impossible("shards \(refIndex)/\(n) and \(i)/\(n) ran on different machines: shard \(refIndex)/\(n) holds results of \(why); refusing to mix (pass --allow-mixing to merge them, each row keeping its machine)")
                }
                if let why = reference.conflict(machine: reference.machine, build: reference.build, topology: m.topology) {
                    throw LabError.impossible("shards \(refIndex)/\(n) and \(i)/\(n) ran on different topologies: shard \(refIndex)/\(n) holds results of \(why); refusing to mix (pass --allow-mixing to merge them)")
                }
            }
        }

        // Every planned run exactly once; run ids renumbered; thread rows follow their run.
        guard let header = rows[refIndex]?.header, !header.isEmpty else {
            throw LabError.impossible("shard \(refIndex)/\(n) has no runs.csv header")
        }
        let threadsHeader = try readCSV(path: (shardsDir as NSString).appendingPathComponent("\(refIndex)/threads.csv")).header
        var runLines: [String] = [csvLine(header)]
        var threadLines: [String] = [csvLine(threadsHeader)]
        var seen: [String: Int] = [:]
        var shardEntries: [ShardManifest] = []
        var nextID = 1
        var notOK = 0
        var machines: [String] = []
        for i in 1...n {
            guard let plan = plans[i], let table = rows[i] else { continue }
            if table.rows.isEmpty { continue }
            guard table.header == header else {
                throw LabError.impossible("shard \(i)/\(n)'s runs.csv has other columns than shard \(refIndex)/\(n)'s; refusing to merge")
            }
            let planned = Set(plan.planned)
            var newID: [String: String] = [:]
            for row in table.rows {
                let key = row["config_key"] ?? ""
                guard planned.contains(key) else {
                    throw LabError.impossible("shard \(i)/\(n) holds run \(key), which its plan does not list; refusing to merge")
                }
                if let other = seen[key] {
                    throw LabError.impossible("run \(key) is recorded twice (shards \(other)/\(n) and \(i)/\(n)); refusing to merge")
                }
                seen[key] = i
                let id = String(nextID)
                nextID += 1
                newID[row["run_id"] ?? ""] = id
                var out = row
                out["run_id"] = id
                runLines.append(csvLine(header.map { out[$0] ?? "" }))
                if row["status"] != "ok" { notOK += 1 }
                if let machine = row["machine"], !machines.contains(machine) { machines.append(machine) }
            }
            let threadsPath = (shardsDir as NSString).appendingPathComponent("\(i)/threads.csv")
            let threads = try readCSV(path: threadsPath)
            guard threads.header == threadsHeader else {
                throw LabError.impossible("shard \(i)/\(n)'s threads.csv has other columns than shard \(refIndex)/\(n)'s; refusing to merge")
            }
            // Thread rows of a run that is not recorded (a crash between the two) are left out.
            for row in threads.rows {
                guard let id = newID[row["run_id"] ?? ""] else { continue }
                var out = row
                out["run_id"] = id
                threadLines.append(csvLine(threadsHeader.map { out[$0] ?? "" }))
            }
            if let m = manifests[i] {
                shardEntries.append(ShardManifest(shard: i, shards: n, runs: table.rows.count, machine: m.machine,
                                                  build: m.build, topology: m.topology, invocations: m.invocations))
            }
        }

        // Written only now, each file replaced whole.
        if let existing = Manifest.read(in: directory), existing.shards == nil {
            throw LabError.impossible("\(directory) holds results of its own, not a merge of its shards; refusing to overwrite them (merge into a folder that only holds shards/)")
        }
        let topologies = shardEntries.map(\.topology).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        var manifest = Manifest(machine: reference.machine, build: reference.build,
                                topology: topologies.count == 1 ? topologies[0] : "mixed: " + topologies.joined(separator: " | "),
                                latencySampling: reference.latencySampling,
                                invocations: shardEntries.flatMap(\.invocations))
        manifest.shards = shardEntries
        manifest.partial = problems.isEmpty ? nil : problems
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeAtomically(Data((threadLines.joined(separator: "\n") + "\n").utf8),
                            to: (directory as NSString).appendingPathComponent("threads.csv"))
        try writeAtomically(Data((runLines.joined(separator: "\n") + "\n").utf8),
                            to: (directory as NSString).appendingPathComponent("runs.csv"))
        try writeAtomically(try encoder.encode(manifest) + Data("\n".utf8),
                            to: (directory as NSString).appendingPathComponent("manifest.json"))
        return Outcome(shards: n, runs: runLines.count - 1, threadRows: threadLines.count - 1, notOK: notOK,
                       machines: machines, figures: first.figures, missing: problems)
    }

    /// One record through the lab's one CSV writer (RFC 4180).
    static func csvLine(_ fields: [String]) -> String { CSVFormat.line(fields) }
}
