// A configuration is its resolved settings (issue 15, §6): duplicates in one command or file run
// once with a note; a repeated option key is refused; a second `run` into a folder adds repeats
// with new numbers. And the command line's rough edges (§7): no silent drop of a lock's thread
// counts, a time estimate for dry runs, `run --help` offering only what run accepts, a labelled
// trylock column, help text wrapped as paragraphs.

import Foundation
import Testing
@testable import LockLab

@Suite("Configuration identity and the command line", .serialized)
struct ConfigIdentityTests {
    @Test func testALockIsLabelledByItsResolvedSettings() throws {
        #expect(try LockSpec(parsing: "backoff:max-backoff=1024").label == "backoff") // the default
        #expect(try LockSpec(parsing: "backoff:max-backoff=64").label == "backoff:max-backoff=64")
        #expect(try LockSpec(parsing: "cna:threshold-ns=1:threshold=9").label
                == LockSpec(parsing: "cna:threshold=9:threshold-ns=1").label)
        #expect(throws: LockError.repeatedOption(spec: "backoff:max-backoff=64:max-backoff=128", key: "max-backoff")) {
            try LockSpec(parsing: "backoff:max-backoff=64:max-backoff=128")
        }
    }

    @Test func testDuplicatesInAnExperimentFileRunOnceWithANote() throws {
        // The field report's duplicate-lock.yaml (issue 15), as reported.
        let text = """
            name: duplicate-lock
            locks: [tas, tas, "backoff", "backoff:max-backoff=1024"]
            threads: [1]
            duration_s: 0.05
            warmup_s: 0.01
            """
        let topology = try Topology.load()
        let matrix = try Experiment.parse(text, file: "duplicate-lock.yaml").matrix(on: topology)
        #expect(matrix.locks.map(\.label) == ["tas", "backoff"])
        #expect(matrix.notes.count == 2, "\(matrix.notes)")
        #expect(matrix.notes.contains { $0.contains("'backoff:max-backoff=1024'") && $0.contains("same settings") })
        let keys = matrix.plannedRuns.map { matrix.configKey($0, topology: topology) }
        #expect(Set(keys).count == keys.count && keys.count == 2)

        let file = try writeFile(text, name: "duplicate-lock.yaml")
        let dir = temporaryDirectory("duplicate")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sweep = try locklab(["sweep", file, "--out", dir])
        #expect(sweep.status == 0, "\(sweep.stderr)")
        #expect(sweep.stdout.contains("note: 'tas' is listed 2 times: run once"), "\(sweep.stdout)")
        let rows = try readCSV(path: dir + "/runs.csv").rows
        #expect(rows.map { $0["lock"]! }.sorted() == ["backoff", "tas"])
        #expect(Set(rows.map { $0["config_key"]! }).count == rows.count)
    }

    @Test func testDuplicatesOnTheCommandLineRunOnce() throws {
        let matrix = RunMatrix(locks: try LockSpec.parseList("tas,tas,backoff:max-backoff=1024,backoff"),
                               threadCounts: [1, 2, 1], placements: [.compact, .compact])
        #expect(matrix.locks.map(\.label) == ["tas", "backoff"])
        #expect(matrix.threadCounts == [1, 2])
        #expect(matrix.placements == [.compact])
        #expect(matrix.notes.count == 4, "\(matrix.notes)")
        #expect(matrix.plannedRuns.count == 4)
        // Workloads by their resolved settings too: the default spelled out is the same workload.
        let workloads = RunMatrix(locks: try LockSpec.parseList("tas"), threadCounts: [1],
                                  workloads: [try WorkloadSpec(parsing: "hashtable"), try WorkloadSpec(parsing: "hashtable"),
                                              try WorkloadSpec(parsing: "queue")])
        #expect(workloads.workloads.map(\.name) == ["hashtable", "queue"])
        #expect(throws: LabError.self) { try WorkloadSpec(parsing: "hashtable:keys=64:keys=128") }
    }

    @Test func testASecondRunIntoAFolderAddsRepeatsWithNewNumbers() throws {
        let dir = temporaryDirectory("repeats")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["run", "--lock", "tas", "--threads", "1", "--repeat", "2", "--duration", "0.05", "--warmup", "0", "--out", dir]
        #expect(try locklab(args).status == 0)
        let second = try locklab(args)
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("already holds repeats 1-2 of these configurations: adding repeats 3-4"), "\(second.stdout)")
        let rows = try readCSV(path: dir + "/runs.csv").rows
        #expect(rows.map { $0["repeat"]! } == ["1", "2", "3", "4"])
        #expect(Set(rows.map { $0["config_key"]! }).count == 4)
        #expect(Set(rows.map { $0["seed"]! }).count == 4)
        // The sweep still resumes (same config keys are skipped, not added).
        let file = try writeFile("name: r\nlocks: [tas]\nthreads: [1]\nrepeats: 2\nduration_s: 0.05\nwarmup_s: 0\n", name: "r.yaml")
        let sweepDir = dir + "-sweep"
        defer { try? FileManager.default.removeItem(atPath: sweepDir) }
        #expect(try locklab(["sweep", file, "--out", sweepDir]).status == 0)
        #expect(try locklab(["sweep", file, "--out", sweepDir]).stdout.contains("2 already recorded, 0 to run"))
    }

    @Test func testALockLeftOutAtSomeThreadCountsIsSaid() throws {
        let dir = temporaryDirectory("limit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try locklab(["run", "--lock", "no-lock,tas", "--threads", "1,2", "--duration", "0.05", "--warmup", "0", "--out", dir])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("note: no-lock runs at most 1 thread: left out at 2 threads"), "\(result.stdout)")
        #expect(try readCSV(path: dir + "/runs.csv").rows.count == 3)
    }

    @Test func testDryRunEstimatesTheTime() throws {
        let file = try writeFile("name: e\nlocks: [tas, mcs]\nthreads: [1, 2]\nrepeats: 3\nduration_s: 2\nwarmup_s: 0.5\n", name: "e.yaml")
        let result = try locklab(["sweep", file, "--out", temporaryDirectory("never"), "--dry-run"])
        #expect(result.status == 0)
        // 12 runs x (0.5 + 2 + 0.05) s = 30.6 s.
        #expect(result.stdout.contains("12 runs planned"), "\(result.stdout)")
        #expect(result.stdout.contains("about 31s"), "\(result.stdout)")
    }

    @Test func testHelpOffersOnlyWhatRunAcceptsAndWrapsParagraphs() throws {
        let run = try locklab(["run", "--help"])
        #expect(!run.stdout.contains("--xml") && !run.stdout.contains("--synthetic"))
        #expect(run.stdout.contains("--virtual-nodes") && run.stdout.contains("--replace-stale"))
        #expect(try locklab(["plan", "--help"]).stdout.contains("--synthetic"))
        // Greedy wrapping: within a paragraph of the overview, no line could have taken the next
        // line's first word (a line broken mid-sentence in the source and wrapped again could).
        for command in ["run", "sweep", "torture", "plan", "topology"] {
            let help = try locklab([command, "--help"]).stdout
            let overview = help.components(separatedBy: "USAGE:").first ?? ""
            let lines = overview.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for (line, next) in zip(lines, lines.dropFirst()) where !line.isEmpty && !next.isEmpty {
                let word = next.split(separator: " ").first.map(String.init) ?? ""
                #expect(line.count + 1 + word.count > 79, "\(command) --help breaks early: '\(line)' / '\(next)'")
            }
        }
    }

    @Test func testListLabelsTheTrylockColumn() throws {
        let list = try locklab(["list"])
        #expect(list.stdout.contains("trylock"))
        let header = list.stdout.split(separator: "\n").first { $0.contains("lock") && $0.contains("waits") } ?? ""
        #expect(header.contains("trylock"), "\(header)")
        #expect(list.stdout.contains("never")) // no-lock's waiting policy
    }
}
