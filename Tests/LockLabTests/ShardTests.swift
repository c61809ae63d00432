// Sharded sweeps: the cut (every run in exactly one shard, curves never split, the same cut twice,
// more shards than curves, balance), merge (complete, missing shard, interrupted shard resumed,
// mixed builds refused, two machines kept apart), and the Slurm scripts' text.

import Foundation
import Testing
@testable import LockLab

/// A lock limited to fewer threads than the others (the harness-only lock), by its descriptor.
private let limitedLock: String = LockRegistry.names.first { name in
    (try? LockSpec(parsing: name))?.entry.descriptor.maxThreads != nil
}!

private let cutExperiment = """
    name: cut
    locks: [tas, ticket, mcs, clh, backoff, \(limitedLock)]
    threads: [1, 2, 3]
    placements: [compact, scatter]
    repeats: 3
    duration_s: 0.5
    warmup_s: 0.1
    seed: 11
    workload:
      cs_ns: [0, 100]
    """

@Suite("Shard cut")
struct ShardCutTests {
    func matrix() throws -> (RunMatrix, Topology) {
        let topology = try Topology.load()
        return (try Experiment.parse(cutExperiment, file: "cut.yaml").matrix(on: topology), topology)
    }

    @Test func testSelectorParsesIOfNAndRefusesTheRest() throws {
        let s = try ShardSelector(parsing: "2/8")
        #expect(s.index == 2 && s.count == 8 && s.description == "2/8")
        #expect(s.directory(in: "/r") == "/r/shards/2")
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", "1/3/4", "-1/3", "", "1/10001"] {
            #expect(throws: LabError.self, "\(bad)") { _ = try ShardSelector(parsing: bad) }
        }
    }

    @Test(arguments: [1, 2, 3, 5, 7, 24])
    func testEveryRunInExactlyOneShardAndNoCurveSplit(shards n: Int) throws {
        let (matrix, topology) = try matrix()
        let all = matrix.plannedRuns.map { matrix.configKey($0, topology: topology) }
        let cut = ShardCut(matrix: matrix, shards: n)
        #expect(cut.curves.count == 6 * 2 * 2)
        var seen: [String: Int] = [:]
        var curveShard: [String: Int] = [:]
        for i in 1...n {
            let mine = matrix.restricted(to: try ShardSelector(index: i, count: n), of: cut)
            for run in mine.plannedRuns {
                let key = mine.configKey(run, topology: topology)
                #expect(seen[key] == nil, "\(key) in shards \(seen[key] ?? 0) and \(i)")
                seen[key] = i
                let curve = matrix.curveKey(run)
                #expect(curveShard[curve, default: i] == i, "curve \(curve) split over shards \(curveShard[curve]!) and \(i)")
                curveShard[curve] = i
            }
            // A shard runs in the order the whole sweep would: its runs are a subsequence of it.
            let order = mine.plannedRuns.map { mine.configKey($0, topology: topology) }
            #expect(order == all.filter { seen[$0] == i })
        }
        #expect(Set(seen.keys) == Set(all) && seen.count == all.count)
        // Balanced: LPT leaves no shard more than one curve's weight above the lightest.
        let loads = (1...n).map { cut.expectedSeconds(of: $0) }
        let heaviest = Double(cut.curves.map(\.expectedMilliseconds).max()!) / 1000
        #expect(loads.max()! - loads.min()! <= heaviest + 1e-9, "\(loads)")
    }

    @Test func testTheSameCutTwiceAndFromAFreshParse() throws {
        let (matrix, _) = try matrix()
        let again = try Experiment.parse(cutExperiment, file: "elsewhere/cut.yaml").matrix(on: try Topology.load())
        for n in [2, 4] {
            let a = ShardCut(matrix: matrix, shards: n), b = ShardCut(matrix: again, shards: n)
            #expect(a == b && a.fingerprint == b.fingerprint)
        }
        #expect(ShardCut(matrix: matrix, shards: 2).fingerprint != ShardCut(matrix: matrix, shards: 3).fingerprint)
        // The shuffle seed orders runs, not the cut.
        var reseeded = matrix
        reseeded.shuffleSeed = 99
        #expect(ShardCut(matrix: reseeded, shards: 4) == ShardCut(matrix: matrix, shards: 4))
    }

    @Test func testAWorkloadIsPartOfTheCurve() throws {
        let topology = try Topology.load()
        let matrix = try Experiment.parse("""
            locks: [tas, mcs]
            threads: [1, 2]
            workload:
              name: [micro, queue]
            """, file: "w.yaml").matrix(on: topology)
        let cut = ShardCut(matrix: matrix, shards: 4)
        #expect(cut.curves.count == 4 && (1...4).allSatisfy { cut.curves(of: $0).count == 1 })
        for i in 1...4 {
            let mine = matrix.restricted(to: try ShardSelector(index: i, count: 4), of: cut)
            #expect(Set(mine.plannedRuns.map { "\($0.spec.label) \($0.workload.label)" }).count == 1)
            #expect(mine.plannedRuns.count == 2)
        }
    }

    @Test func testMoreShardsThanCurvesLeavesTheRestEmpty() throws {
        let (matrix, topology) = try matrix()
        let cut = ShardCut(matrix: matrix, shards: 30)
        let counts = (1...30).map { cut.curves(of: $0).count }
        #expect(counts.prefix(24).allSatisfy { $0 == 1 } && counts.suffix(6).allSatisfy { $0 == 0 })
        let empty = matrix.restricted(to: try ShardSelector(index: 30, count: 30), of: cut)
        #expect(empty.plannedRuns.isEmpty)
        _ = topology
    }

    @Test func testHeavierCurvesFirstAndTheLimitedLockWeighsLess() throws {
        let (matrix, _) = try matrix()
        let cut = ShardCut(matrix: matrix, shards: 4)
        let limited = cut.curves.filter { $0.key.hasPrefix(limitedLock + "|") }
        let full = cut.curves.filter { !$0.key.hasPrefix(limitedLock + "|") }
        #expect(limited.allSatisfy { $0.runs == 3 } && full.allSatisfy { $0.runs == 9 })
        // 20 curves of 9 runs over 4 shards: 5 each; the 4 light ones one per shard.
        for i in 1...4 {
            #expect(cut.curves(of: i).filter { $0.runs == 9 }.count == 5)
            #expect(cut.curves(of: i).filter { $0.runs == 3 }.count == 1)
        }
        #expect(abs(cut.expectedSeconds(of: 1) - (5 * 9 + 3) * 0.7) < 1e-9)
    }
}

private let mergeExperiment = """
    name: merge
    locks: [tas, ticket, mcs]
    threads: [1, 2]
    repeats: 2
    duration_s: 0.05
    warmup_s: 0.05
    seed: 4
    report:
      figures: [throughput]
    """

@Suite("Shard merge", .serialized)
struct ShardMergeTests {
    /// Runs `shards` of an N-shard sweep into a new folder (or `existingDir`) with the command line
    /// (`locklab sweep FILE --shard I/N`); returns the folder and the file.
    func sweep(shards: [Int], of n: Int = 3, file existing: String? = nil, into existingDir: String? = nil) throws -> (String, String) {
        let file = try existing ?? writeFile(mergeExperiment, name: "merge.yaml")
        let dir = existingDir ?? temporaryDirectory("shards")
        for i in shards {
            let result = try locklab(["sweep", file, "--shard", "\(i)/\(n)", "--out", dir])
            #expect(result.status == 0, "shard \(i)/\(n): \(result.stderr)")
        }
        return (dir, file)
    }

    func planned(_ file: String) throws -> [String] {
        let topology = try Topology.load()
        let matrix = try Experiment.load(path: file).matrix(on: topology)
        return matrix.plannedRuns.map { matrix.configKey($0, topology: topology) }.sorted()
    }

    func bytes(_ dir: String) -> [Data?] {
        ["runs.csv", "threads.csv", "manifest.json"].map { FileManager.default.contents(atPath: dir + "/" + $0) }
    }

    func expectOneLine(_ body: () throws -> Void, mentioning words: [String]) {
        do {
            try body()
            Issue.record("merged, but should have refused (\(words))")
        } catch let e as LabError {
            #expect(!e.description.contains("\n"))
            for w in words { #expect(e.description.contains(w), "'\(w)' not in: \(e.description)") }
        } catch { Issue.record("unexpected \(error)") }
    }

    func checkMerged(_ dir: String, file: String) throws {
        let runs = try readCSV(path: dir + "/runs.csv").rows
        #expect(runs.map { $0["config_key"]! }.sorted() == (try planned(file)))
        #expect(runs.map { $0["run_id"]! } == (1...runs.count).map(String.init))
        let threads = try readCSV(path: dir + "/threads.csv").rows
        #expect(threads.count == runs.reduce(0) { $0 + Int($1["threads"]!)! })
        // Each thread row belongs to a run of its thread count and lock.
        let byID = Dictionary(uniqueKeysWithValues: runs.map { ($0["run_id"]!, $0) })
        for t in threads {
            #expect(byID[t["run_id"]!]?["lock"] == t["lock"] && byID[t["run_id"]!]?["threads"] == t["threads"])
        }
        let manifest = try #require(Manifest.read(in: dir))
        #expect(manifest.shards?.map(\.shard) == [1, 2, 3])
        #expect(manifest.shards?.reduce(0) { $0 + $1.runs } == runs.count)
    }

    @Test func testCompleteShardsMergeIntoOneFolderAndMergingAgainGivesTheSameBytes() throws {
        let (dir, file) = try sweep(shards: [1, 2, 3])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outcome = try ShardMerge.merge(directory: dir)
        #expect(outcome.shards == 3 && outcome.runs == 12 && outcome.threadRows == 18 && outcome.figures == ["throughput"])
        try checkMerged(dir, file: file)
        let first = bytes(dir)
        _ = try ShardMerge.merge(directory: dir)
        #expect(bytes(dir) == first)
    }

    @Test func testAMissingShardIsNamedInOneLineAndAddingItGivesTheCompleteFolder() throws {
        let (dir, file) = try sweep(shards: [1, 3])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        expectOneLine({ _ = try ShardMerge.merge(directory: dir) }, mentioning: ["shard 2/3 missing", "--shard I/3"])
        let cli = try locklab(["merge", dir])
        #expect(cli.status == 2 && cli.stderr.split(separator: "\n").count == 1 && cli.stderr.contains("shard 2/3 missing"), "\(cli.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/runs.csv"))
        _ = try sweep(shards: [2], file: file, into: dir)
        let merged = try locklab(["merge", dir])
        #expect(merged.status == 0 && merged.stdout.contains("merged 3 shards into \(dir): 12 runs, 18 thread rows"), "\(merged.stdout)")
        try checkMerged(dir, file: file)
        // The same folder as if shard 2 had been there the first time: a fresh merge of a copy.
        let copy = temporaryDirectory("shards-copy")
        defer { try? FileManager.default.removeItem(atPath: copy) }
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/shards", toPath: copy + "/shards")
        _ = try ShardMerge.merge(directory: copy)
        #expect(bytes(copy) == bytes(dir))
    }

    @Test func testPartialMergeKeepsTheSurvivorsAndSaysWhatIsMissing() throws {
        let (dir, file) = try sweep(shards: [1, 3])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cli = try locklab(["merge", dir, "--partial"])
        #expect(cli.status == 0, "\(cli.stderr)")
        #expect(cli.stdout.contains("merged 3 shards into \(dir): 8 runs") && cli.stdout.contains("partial: shard 2/3 missing"), "\(cli.stdout)")
        let manifest = try #require(Manifest.read(in: dir))
        #expect(manifest.partial == ["shard 2/3 missing"])
        #expect(try readCSV(path: dir + "/runs.csv").rows.count == 8)
        // Once the missing shard has run, a plain merge gives the complete folder, no longer partial.
        _ = try sweep(shards: [2], file: file, into: dir)
        let merged = try locklab(["merge", dir])
        #expect(merged.status == 0 && merged.stdout.contains("12 runs"), "\(merged.stdout)")
        #expect(try #require(Manifest.read(in: dir)).partial == nil)
        try checkMerged(dir, file: file)
    }

    @Test func testAnInterruptedShardIsIncompleteUntilResumedThenMerges() throws {
        let (dir, file) = try sweep(shards: [1, 2, 3])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // What a SIGKILL after shard 2's first run leaves (SweepInterruptionTests): one complete
        // row, the thread rows of the run after it, and a torn last line.
        let runsPath = dir + "/shards/2/runs.csv"
        let lines = try String(contentsOfFile: runsPath, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        try #require(lines.count >= 5, "shard 2 should hold a header and 4 runs")
        try (lines[0...1].joined(separator: "\n") + "\n" + lines[2].prefix(30)).write(toFile: runsPath, atomically: true, encoding: .utf8)
        expectOneLine({ _ = try ShardMerge.merge(directory: dir) }, mentioning: ["shard 2/3 incomplete (1 of 4 runs)"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/runs.csv"))
        _ = try sweep(shards: [2], file: file, into: dir) // resumes: 3 runs
        #expect(try readCSV(path: runsPath).rows.count == 4)
        _ = try ShardMerge.merge(directory: dir)
        try checkMerged(dir, file: file)
    }

    /// Rewrites shard `i`'s manifest with `edit` applied to its JSON object.
    func editManifest(_ dir: String, shard i: Int, _ edit: (inout [String: Any]) -> Void) throws {
        let path = dir + "/shards/\(i)/manifest.json"
        var json = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    }

    @Test func testShardsOfDifferentBuildsAreRefused() throws {
        let (dir, _) = try sweep(shards: [1, 2, 3])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try editManifest(dir, shard: 2) { json in
            var build = json["build"] as! [String: Any]
            for key in ["git_commit", "build_id", "source_digest"] where build[key] != nil { build[key] = "0123456789ab" }
            build["configuration"] = "other"
            json["build"] = build
        }
        expectOneLine({ _ = try ShardMerge.merge(directory: dir, allowMixing: true) }, mentioning: ["different builds", "shard 2/3"])
        #expect(!FileManager.default.fileExists(atPath: dir + "/runs.csv"))
    }

    @Test func testTwoMachinesAreRefusedUnlessAllowedAndThenKeptApart() throws {
        let (dir, file) = try sweep(shards: [1, 2, 3])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Shard 3 on another machine: its manifest and its rows say so.
        try editManifest(dir, shard: 3) { json in
            var machine = json["machine"] as! [String: Any]
            machine["host"] = "other-host"
            machine["cpu_model"] = "Other CPU"
            if machine["machine_id"] != nil { machine["machine_id"] = "00000000000000ff" }
            json["machine"] = machine
        }
        let runsPath = dir + "/shards/3/runs.csv"
        let table = try readCSV(path: runsPath)
        let text = ([table.header] + table.rows.map { row in
            table.header.map { column in
                column == "machine" ? "other-host" : column == "machine_id" ? "00000000000000ff" : row[column]!
            }
        }).map { CSVFormat.line($0) }.joined(separator: "\n") + "\n"
        try text.write(toFile: runsPath, atomically: true, encoding: .utf8)

        expectOneLine({ _ = try ShardMerge.merge(directory: dir) }, mentioning: ["different machines", "--allow-mixing"])
        let outcome = try ShardMerge.merge(directory: dir, allowMixing: true)
        #expect(outcome.machines.count == 2 && outcome.machines.contains("other-host"))
        try checkMerged(dir, file: file)
        let runs = try readCSV(path: dir + "/runs.csv").rows
        let shard3 = Set(try ShardPlan.read(in: dir + "/shards/3")!.planned)
        for row in runs {
            #expect((row["machine"] == "other-host") == shard3.contains(row["config_key"]!))
        }
        let manifest = try #require(Manifest.read(in: dir))
        #expect(Set(manifest.shards!.map(\.machine.host)).count == 2)
    }

    @Test func testShardsOfAnotherCutAndForeignFoldersAreRefused() throws {
        let (dir, file) = try sweep(shards: [1, 2, 3])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The same folder resumed as shard 1 of 2: refused before any run, in one line.
        let other = try locklab(["sweep", file, "--shard", "1/2", "--out", dir])
        #expect(other.status == 2 && other.stderr.contains("of another cut"), "\(other.stderr)")
        #expect(try readCSV(path: dir + "/shards/1/runs.csv").rows.count == 4)
        // A folder with results of its own is not overwritten by a merge.
        let own = temporaryDirectory("own")
        defer { try? FileManager.default.removeItem(atPath: own) }
        #expect(try locklab(["sweep", file, "--out", own]).status == 0)
        try FileManager.default.copyItem(atPath: dir + "/shards", toPath: own + "/shards")
        expectOneLine({ _ = try ShardMerge.merge(directory: own) }, mentioning: ["refusing to overwrite"])
        expectOneLine({ _ = try ShardMerge.merge(directory: temporaryDirectory("none")) }, mentioning: ["holds no shard"])
    }

    @Test func testMoreShardsThanCurvesMergeTheEmptyOnesToo() throws {
        let (dir, file) = try sweep(shards: [1, 2, 3, 4, 5], of: 5)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let outcome = try ShardMerge.merge(directory: dir)
        #expect(outcome.shards == 5 && outcome.runs == 12)
        #expect(try readCSV(path: dir + "/runs.csv").rows.map { $0["config_key"]! }.sorted() == (try planned(file)))
    }
}

@Suite("Slurm scripts", .serialized)
struct SlurmScriptTests {
    func job(exclusive: Bool = true) throws -> SlurmJob {
        try SlurmJob(locklab: "/opt/locklab/bin/locklab", experimentFile: "/home/r/Experiments/scaling.yaml",
                     out: "/scratch/r/scaling", name: "scaling", shards: 4, partition: "numa",
                     constraint: "epyc&2sock", timeLimit: "2:00:00", exclusive: exclusive, workingDirectory: "/home/r")
    }

    @Test func testTheArrayScriptForGivenOptions() throws {
        #expect(try job().shardScript == """
            #!/bin/bash
            # LockLab: experiment 'scaling' (/home/r/Experiments/scaling.yaml) as a Slurm job array; task I runs shard I of 4
            # (whole curves: one lock, workload and placement over all its thread counts and repeats) into
            # /scratch/r/scaling/shards/I/, resuming what an earlier attempt recorded. Written by `locklab slurm`.
            #SBATCH --job-name=locklab-scaling
            #SBATCH --array=1-4
            #SBATCH --nodes=1
            #SBATCH --ntasks=1
            #SBATCH --exclusive
            #SBATCH --partition=numa
            #SBATCH --constraint=epyc&2sock
            #SBATCH --time=2:00:00
            #SBATCH --output=/scratch/r/scaling/logs/shard-%a-job-%A.out
            #SBATCH --chdir=/home/r
            set -euo pipefail
            exec /opt/locklab/bin/locklab sweep /home/r/Experiments/scaling.yaml --shard "${SLURM_ARRAY_TASK_ID}/4" --out /scratch/r/scaling

            """)
        let shared = try job(exclusive: false).shardScript
        #expect(!shared.contains("#SBATCH --exclusive") && shared.contains("# not exclusive"))
    }

    @Test func testTheMergeJobAndTheSubmitScript() throws {
        let j = try job()
        #expect(j.mergeScript == """
            #!/bin/bash
            # LockLab: merge the 4 shards of 'scaling' into /scratch/r/scaling and draw its report. Submitted with
            # --dependency=afterany:<array job>: it starts when every shard has ended, finished or not;
            # merge names a shard that did not finish (rerun that task, then this job). Written by `locklab slurm`.
            #SBATCH --job-name=locklab-scaling-merge
            #SBATCH --nodes=1
            #SBATCH --ntasks=1
            #SBATCH --partition=numa
            #SBATCH --constraint=epyc&2sock
            #SBATCH --time=30
            #SBATCH --output=/scratch/r/scaling/logs/merge-job-%j.out
            #SBATCH --chdir=/home/r
            set -euo pipefail
            exec /opt/locklab/bin/locklab merge /scratch/r/scaling --report

            """)
        #expect(j.submitScript.contains("array=$(sbatch --parsable /scratch/r/scaling/slurm/shards.sbatch)"))
        #expect(j.submitScript.contains("--dependency=afterany:\"$array\" /scratch/r/scaling/slurm/merge.sbatch"))
    }

    @Test func testBadOptionsAreRefusedInOneLine() throws {
        func make(partition: String? = nil, constraint: String? = nil, time: String? = nil, out: String = "/r", shards: Int = 2) throws {
            _ = try SlurmJob(locklab: "/l", experimentFile: "/f.yaml", out: out, name: "x", shards: shards,
                             partition: partition, constraint: constraint, timeLimit: time, workingDirectory: "/")
        }
        for time in ["30", "30:00", "2:00:00", "1-0", "1-12:00", "1-12:00:00", "infinite"] {
            #expect(throws: Never.self, "\(time)") { try make(time: time) }
        }
        for time in ["2 hours", "1h", "", "1-", "1:2:3:4", "-5"] {
            #expect(throws: LabError.self, "\(time)") { try make(time: time) }
        }
        #expect(throws: LabError.self) { try make(partition: "a b") }
        #expect(throws: LabError.self) { try make(partition: "x\n#SBATCH --uid=0") }
        #expect(throws: LabError.self) { try make(constraint: "a;rm") }
        #expect(throws: LabError.self) { try make(out: "/my results") }
        #expect(throws: LabError.self) { try make(shards: 0) }
    }

    @Test func testSbatchAnswersAreParsed() {
        #expect(SlurmJob.jobID(fromSbatchOutput: "4242\n") == "4242")
        #expect(SlurmJob.jobID(fromSbatchOutput: "4242;cluster-a\n") == "4242")
        #expect(SlurmJob.jobID(fromSbatchOutput: "Submitted batch job 77\n") == "77")
        #expect(SlurmJob.jobID(fromSbatchOutput: "sbatch: warning: x\n99\n") == "99")
        #expect(SlurmJob.jobID(fromSbatchOutput: "sbatch: error: invalid partition") == nil)
        #expect(SlurmJob.jobID(fromSbatchOutput: "") == nil)
    }

    @Test func testSubmitWithoutSbatchSaysSoInOneLineAndWithAFakeSbatchShowsTheJobIDs() throws {
        let file = try writeFile(mergeExperiment, name: "merge.yaml")
        let dir = temporaryDirectory("slurm")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let none = try locklab(["slurm", file, "--shards", "3", "--out", dir, "--submit"], environment: ["PATH": "/nonexistent"])
        #expect(none.status == 2)
        #expect(none.stderr.split(separator: "\n").count == 1 && none.stderr.contains("sbatch is not on the PATH"), "\(none.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/slurm/shards.sbatch"))
        #expect(FileManager.default.fileExists(atPath: dir + "/logs"))

        // A fake sbatch that records its arguments and answers as `sbatch --parsable` does.
        let bin = dir + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let fake = """
            #!/bin/sh
            echo "$*" >> \(bin)/calls
            n=$(wc -l < \(bin)/calls)
            echo "$((4241 + n));cluster"
            """
        try fake.write(toFile: bin + "/sbatch", atomically: true, encoding: .utf8)
        chmod(bin + "/sbatch", 0o755)
        let submitted = try locklab(["slurm", file, "--shards", "3", "--out", dir, "--submit", "--no-exclusive"],
                                    environment: ["PATH": bin + ":/usr/bin:/bin"])
        #expect(submitted.status == 0, "\(submitted.stderr)")
        #expect(submitted.stdout.contains("array job 4242 (tasks 1-3), merge and report as job 4243 (afterany:4242)"), "\(submitted.stdout)")
        let calls = try String(contentsOfFile: bin + "/calls", encoding: .utf8).split(separator: "\n")
        #expect(calls == ["--parsable \(dir)/slurm/shards.sbatch", "--parsable --dependency=afterany:4242 \(dir)/slurm/merge.sbatch"])
        #expect(!(try String(contentsOfFile: dir + "/slurm/shards.sbatch", encoding: .utf8)).contains("#SBATCH --exclusive"))
    }
}
