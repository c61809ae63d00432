// The sweep: experiment files (thread counts relative to the machine, one-line errors naming the
// file and the field), and interruption: SIGINT and SIGKILL mid-way, then resume, must leave every
// planned run recorded exactly once.

import Foundation
import Testing
@testable import LockLab

private let smallExperiment = """
    name: small
    locks: [tas, mcs]
    threads: ["1..all"]
    repeats: 4
    duration_s: 0.05
    warmup_s: 0.01
    seed: 5
    workload:
      cs_lines: 1
      ncs_ns: [0, 50]
    """

func writeFile(_ text: String, name: String) throws -> String {
    let dir = temporaryDirectory("exp")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let path = dir + "/" + name
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite("Experiment files")
struct ExperimentFileTests {
    @Test func testThreadCountsResolveAgainstTheMachine() throws {
        func counts(_ text: String, cpus: Int, nodes: Int) throws -> [Int] {
            try ThreadCountSpec(parsing: text).resolve(cpus: cpus, nodes: nodes)
        }
        #expect(try counts("8", cpus: 2, nodes: 1) == [8])
        #expect(try counts("all", cpus: 96, nodes: 4) == [96])
        #expect(try counts("per-node", cpus: 96, nodes: 4) == [24])
        #expect(try counts("2x", cpus: 96, nodes: 4) == [192])
        #expect(try counts("1..all", cpus: 4, nodes: 1) == [1, 2, 3, 4])
        #expect(try counts("1..all step node", cpus: 96, nodes: 4) == [1, 24, 48, 72, 96])
        #expect(try counts("1..all step node", cpus: 2, nodes: 1) == [1, 2])
        #expect(try counts("1..16 step 4", cpus: 2, nodes: 1) == [1, 4, 8, 12, 16])
        #expect(try counts("4..4", cpus: 2, nodes: 1) == [4])
        for bad in ["0", "-1", "many", "1..", "..4", "1..4 step x", "0x"] {
            #expect(throws: LabError.self, "\(bad)") { _ = try ThreadCountSpec(parsing: bad) }
        }
    }

    @Test func testShippedExperimentsParseAndPlanHere() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Experiments")
        let topology = try Topology.load()
        for name in ["quick", "scaling", "oversubscription", "cs-length", "locality"] {
            let experiment = try Experiment.load(path: root.appendingPathComponent("\(name).yaml").path)
            #expect(experiment.name == name)
            let settings = try experiment.matrix(on: topology)
            #expect(!settings.plannedRuns.isEmpty)
        }
    }

    @Test func testMinNodesSplitsOnlyMachinesWithFewerNodes() throws {
        let machine = try Topology.load()
        let wanted = machine.nodeCount + 1
        guard wanted <= machine.coreCount else { return } // cannot split further here
        let e = try Experiment.parse("locks: [mcs]\nthreads: [1]\nmin_nodes: \(wanted)\n", file: "m.yaml")
        #expect(try e.topology().nodeCount == wanted)
        let f = try Experiment.parse("locks: [mcs]\nthreads: [1]\nmin_nodes: 1\n", file: "m.yaml")
        #expect(try f.topology().virtualNodes == nil)
    }

    @Test func testSmallExperimentPlansTheFullMatrixShuffledWithRepeatsOutermost() throws {
        let experiment = try Experiment.parse(smallExperiment, file: "small.yaml")
        let topology = try Topology.load()
        let settings = try experiment.matrix(on: topology)
        let runs = settings.plannedRuns
        let cpus = topology.cpus.count
        #expect(runs.count == 2 * cpus * 2 * 4)
        let keys = runs.map { settings.configKey($0, topology: topology) }
        #expect(Set(keys).count == keys.count)
        // Repeats outermost: every configuration runs r times before any runs r + 1 times.
        #expect(runs.map(\.repeatIndex) == runs.map(\.repeatIndex).sorted())
        // Seeded: the same seed gives the same order, another seed another order.
        #expect(try experiment.matrix(on: topology).plannedRuns.map { settings.configKey($0, topology: topology) } == keys)
        var other = experiment
        other.seed = 6
        let otherKeys = try other.matrix(on: topology).plannedRuns.map { settings.configKey($0, topology: topology) }
        #expect(Set(otherKeys) == Set(keys))
    }

    static let malformed: [(String, String)] = [
        ("locks: [mcs]\n", "field 'threads': is required"),
        ("threads: [1]\n", "field 'locks': is required"),
        ("locks: [nosuch]\nthreads: [1]\n", "field 'locks': unknown lock 'nosuch'"),
        ("locks: [\"mcs:depth=1\"]\nthreads: [1]\n", "field 'locks'"),
        ("locks: [mcs]\nthreads: [0]\n", "field 'threads'"),
        ("locks: [mcs]\nthreads: [lots]\n", "field 'threads'"),
        ("locks: [mcs]\nthreads: [1]\nrepeats: 0\n", "field 'repeats'"),
        ("locks: [mcs]\nthreads: [1]\nrepeats: three\n", "field 'repeats': expected an integer"),
        ("locks: [mcs]\nthreads: [1]\nduration_s: -1\n", "field 'duration_s'"),
        ("locks: [mcs]\nthreads: [1]\nthread: [2]\n", "field 'thread': unknown field"),
        ("locks: [mcs]\nthreads: [1]\nplacements: [diagonal]\n", "field 'placements'"),
        ("locks: [mcs]\nthreads: [1]\nworkload:\n  cs_lines: [-1]\n", "field 'workload.cs_lines'"),
        ("locks: [mcs]\nthreads: [1]\nworkload:\n  cs_line: 1\n", "field 'workload.cs_line': unknown field"),
        ("locks: [mcs]\nthreads: [1]\nworkload: 3\n", "field 'workload'"),
        ("locks: [mcs]\nthreads: [1]\nreport:\n  figures: [pie]\n", "field 'report.figures': unknown figure 'pie'"),
        ("locks: [null]\nthreads: [2]\n", "field 'locks'"),
        ("locks: [mcs\nthreads: [1]\n", "not valid YAML at line"),
        ("locks: [mcs]\nlocks: [tas]\nthreads: [1]\n", "duplicated key"),
        ("- mcs\n- tas\n", "expected a mapping"),
        ("", "empty"),
        ("locks: [mcs]\nthreads: [1]\nmem_node: far\n", "field 'mem_node'"),
        ("locks: [mcs]\nthreads: [1]\nvirtual_nodes: 2\nmin_nodes: 2\n", "field 'min_nodes'"),
    ]

    @Test("malformed or contradictory files: one line naming file and field", arguments: malformed.indices)
    func testMalformedFileGivesOneLineNamingFileAndField(index: Int) throws {
        let (text, mention) = Self.malformed[index]
        do {
            _ = try Experiment.parse(text, file: "bad.yaml")
            Issue.record("accepted: \(text)")
        } catch let e as ExperimentFileError {
            #expect(e.description.hasPrefix("bad.yaml: "))
            #expect(e.description.contains(mention), "\(e.description)")
            #expect(!e.description.contains("\n"))
        }
    }

    @Test func testMalformedFileThroughTheCommandLineExitsWith2() throws {
        let path = try writeFile("locks: [mcs]\nthreads: [lots]\n", name: "bad.yaml")
        let result = try locklab(["sweep", path, "--out", temporaryDirectory("never")])
        #expect(result.status == 2)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains(path) && result.stderr.contains("threads"))
    }
}

@Suite("Sweep interruption", .serialized)
struct SweepInterruptionTests {
    func waitForRows(_ dir: String, atLeast n: Int, timeout: Double = 60) -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let rows = try? readCSV(path: dir + "/runs.csv").rows.count, rows >= n { return rows }
            usleep(20_000)
        }
        return -1
    }

    func checkComplete(_ dir: String, experiment: String) throws {
        let topology = try Topology.load()
        let settings = try Experiment.parse(experiment, file: "small.yaml").matrix(on: topology)
        let planned = Set(settings.plannedRuns.map { settings.configKey($0, topology: topology) })
        let runs = try readCSV(path: dir + "/runs.csv").rows
        let keys = runs.map { $0["config_key"]! }
        #expect(keys.count == planned.count, "rows \(keys.count), planned \(planned.count)")
        #expect(Set(keys) == planned)
        #expect(Set(runs.map { $0["run_id"]! }).count == runs.count)
        let threads = try readCSV(path: dir + "/threads.csv").rows
        #expect(threads.count == runs.reduce(0) { $0 + Int($1["threads"]!)! })
        let runIDs = Set(runs.map { $0["run_id"]! })
        #expect(threads.allSatisfy { runIDs.contains($0["run_id"]!) })
    }

    func start(_ args: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/locklab")
        process.arguments = args
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    @Test func testSIGINTStopsCleanlyAndResumeCompletesExactlyOnce() throws {
        // Runs long enough (0.3 s) that the signal lands well before the end.
        let experiment = smallExperiment.replacingOccurrences(of: "duration_s: 0.05", with: "duration_s: 0.3")
        let file = try writeFile(experiment, name: "small.yaml")
        let dir = temporaryDirectory("sigint")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try start(["sweep", file, "--out", dir])
        #expect(waitForRows(dir, atLeast: 3) >= 3)
        first.interrupt() // SIGINT
        first.waitUntilExit()
        #expect(first.terminationStatus == 130)
        let partial = try readCSV(path: dir + "/runs.csv").rows.count
        #expect(partial >= 3)
        let second = try locklab(["sweep", file, "--out", dir])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("\(partial) already recorded"))
        try checkComplete(dir, experiment: experiment)
    }

    @Test func testSIGKILLLosesNoFinishedRowAndResumeCompletesExactlyOnce() throws {
        let file = try writeFile(smallExperiment, name: "small.yaml")
        let dir = temporaryDirectory("sigkill")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for target in [2, 7] {
            let p = try start(["sweep", file, "--out", dir])
            _ = waitForRows(dir, atLeast: target)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        let finished = try readCSV(path: dir + "/runs.csv").rows.count
        #expect(finished >= 7)
        let resumed = try locklab(["sweep", file, "--out", dir])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        try checkComplete(dir, experiment: smallExperiment)
    }

    @Test func testTornLastLineIsRepairedOnResumeWithoutLosingCompleteRows() throws {
        let experiment = smallExperiment.replacingOccurrences(of: "repeats: 4", with: "repeats: 1")
        let file = try writeFile(experiment, name: "small.yaml")
        let dir = temporaryDirectory("torn")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try locklab(["sweep", file, "--out", dir]).status == 0)
        let before = try readCSV(path: dir + "/runs.csv").rows
        #expect(before.count >= 2)
        // A crash in the middle of writing the last run row: half of it, no newline; its thread
        // rows (written first) are already there and now orphans.
        let path = dir + "/runs.csv"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let lastLineStart = data.dropLast().lastIndex(of: UInt8(ascii: "\n"))! + 1
        let torn = data.prefix(lastLineStart + (data.count - lastLineStart) / 2)
        try torn.write(to: URL(fileURLWithPath: path))
        #expect(try readCSV(path: path).rows.count == before.count - 1)

        let resumed = try locklab(["sweep", file, "--out", dir])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.contains("\(before.count - 1) already recorded"), "\(resumed.stdout)")
        // Every complete row kept as it was; the torn run ran again, once.
        let after = try readCSV(path: path).rows
        #expect(Array(after.prefix(before.count - 1)).map { $0["config_key"]! } == before.prefix(before.count - 1).map { $0["config_key"]! })
        #expect(Array(after.prefix(before.count - 1)).map { $0["ops"]! } == before.prefix(before.count - 1).map { $0["ops"]! })
        #expect(after.last?["config_key"] == before.last?["config_key"])
        try checkComplete(dir, experiment: experiment)
    }

    @Test func testRefusesAnotherTopologyInTheSameFolder() throws {
        let file = try writeFile(smallExperiment.replacingOccurrences(of: "repeats: 4", with: "repeats: 1"), name: "small.yaml")
        let dir = temporaryDirectory("mix")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try locklab(["sweep", file, "--out", dir]).status == 0)
        let mixed = try locklab(["sweep", file, "--out", dir, "--virtual-nodes", "2"])
        #expect(mixed.status == 2)
        #expect(mixed.stderr.contains("refusing to mix"))
    }
}
