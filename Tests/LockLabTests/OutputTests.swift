// Results out: runs.csv, threads.csv and manifest.json from a real (tiny) session; the CSV's
// crash repair; and the CLI's one-line errors with exit code 2.

import Foundation
import Testing
@testable import LockLab

private let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

func temporaryDirectory(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("locklab-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
    try? FileManager.default.removeItem(atPath: dir)
    return dir
}

/// The columns the foundation issue promises researchers.
let requiredRunColumns = [
    "run_id", "lock", "threads", "placement", "nodes", "oversubscribed", "cs_lines", "cs_ns", "ncs_ns",
    "duration_s", "repeat", "ops", "ops_per_sec", "jain_fairness", "min_thread_ops", "max_thread_ops",
    "lat_p50_ns", "lat_p99_ns", "lat_p999_ns", "lat_max_ns", "same_node_handover_frac", "cpu_user_s",
    "cpu_sys_s", "cpu_s_per_mop", "ctx_vol", "ctx_invol", "mutex_ok", "machine", "git_commit",
]

@Suite("Output", .serialized)
struct OutputTests {
    @Test func testSessionWritesOneRowPerRunWithParsableValues() throws {
        let dir = temporaryDirectory("session")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let topology = try Topology.load(virtualNodes: 2)
        let settings = RunMatrix(
            locks: try LockSpec.parseList("no-lock,tas,mcs"), threadCounts: [1, 2], repeats: 2,
            workloads: [.micro(.init(csLines: 2, csNanoseconds: 0, ncsNanoseconds: 20, ncsRandom: true))],
            placements: [.scatter], warmupSeconds: 0.01, durationSeconds: 0.25, sampleEvery: 4,
            // Under ThreadSanitizer, beside the parallel suite, a 1-thread run once made no
            // progress for the default 30 s (CI, and once locally in two runs of the whole suite;
            // never alone): this test checks the output, the watchdog has its own tests.
            stallTimeoutSeconds: ThreadSanitizer.isActive ? 600 : 30)
        // 0.25 s, not less: the suite runs tests in parallel on 2 CPUs, and a 2-thread spin lock whose
        // holder is preempted for a whole short run records no acquisition at all.
        try settings.validate(on: topology)
        let writer = try ResultsWriter(directory: dir)
        _ = try Manifest.record(in: dir, machine: MachineInfo.current(), build: BuildInfo.current(),
                                topology: topology.summary, latencySampling: RunMatrix.samplingNote(4), command: "test")
        let planned = settings.plannedRuns
        #expect(planned.count == 10) // no-lock runs at 1 thread only
        #expect(planned.map(\.spec.name).prefix(3) == ["no-lock", "tas", "mcs"]) // interleaved a b c
        for run in planned {
            let (d, s) = try settings.measure(run, topology: topology, runID: writer.nextRunID(),
                                             machine: "test-machine", gitCommit: "abc")
            try writer.append(d, s)
        }

        let runs = try readCSV(path: dir + "/runs.csv")
        for column in requiredRunColumns { #expect(runs.header.contains(column), "runs.csv lacks \(column)") }
        #expect(runs.rows.count == planned.count)
        #expect(Set(runs.rows.map { $0["run_id"]! }).count == planned.count)
        for row in runs.rows {
            #expect(row["mutex_ok"] == "1")
            #expect(row["status"] == "ok", "\(row["lock"]!) at \(row["threads"]!) threads, repeat \(row["repeat"]!)")
            #expect(Double(row["ops_per_sec"]!)! > 0)
            #expect(Int(row["ops"]!)! > 0)
            let jain = Double(row["jain_fairness"]!)!
            #expect(jain > 0 && jain <= 1.0000001)
            if row["lat_samples"] == "0" {
                // Nothing sampled: empty cells, never 0.
                #expect(row["lat_p50_ns"] == "" && row["lat_p99_ns"] == "")
            } else {
                #expect(Double(row["lat_p99_ns"] ?? "") ?? -1 >= Double(row["lat_p50_ns"] ?? "") ?? 0)
            }
            // CPU seconds per million acquisitions: (user + sys) / (ops / 1e6), to the CSV's precision.
            if let ops = Double(row["ops"]!), ops > 0, let user = Double(row["cpu_user_s"]!),
               let sys = Double(row["cpu_sys_s"]!) {
                let perMop = (user + sys) / (ops / 1e6)
                let written = Double(row["cpu_s_per_mop"]!) ?? -1
                #expect(abs(written - perMop) <= 1e-6 + 1e-3 * perMop, "cpu_s_per_mop \(written), expected \(perMop)")
            } else {
                #expect(row["cpu_s_per_mop"] == "", "no acquisitions: cpu_s_per_mop must be empty")
            }
            #expect(row["nodes"] == (row["threads"] == "1" ? "1" : "2"))
            #expect(row["virtual_nodes"] == "2")
            if row["threads"] == "2" {
                // Two threads on two virtual nodes: every handover crosses nodes. (A machine busy
                // enough to run one thread through a whole 50 ms run leaves none: empty.)
                #expect(row["same_node_handover_frac"] == "0" || row["same_node_handover_frac"] == "")
            }
            for (key, value) in row { #expect(value.unicodeScalars.allSatisfy { $0.isASCII }, "\(key) is not ASCII") }
        }
        #expect(runs.rows.contains { $0["threads"] == "2" && $0["same_node_handover_frac"] == "0" })
        let threads = try readCSV(path: dir + "/threads.csv")
        #expect(threads.rows.count == runs.rows.reduce(0) { $0 + Int($1["threads"]!)! })
        #expect(Set(threads.rows.map { $0["node"]! }) == ["0", "1"])

        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json")))
            as! [String: Any]
        for key in ["machine", "build", "topology", "latency_sampling", "invocations"] {
            #expect(manifest[key] != nil, "manifest lacks \(key)")
        }
        let machine = manifest["machine"] as! [String: Any]
        for key in ["host", "cpu_model", "kernel", "cycles_per_ns"] { #expect(machine[key] != nil) }
        let build = manifest["build"] as! [String: Any]
        for key in ["git_commit", "lab_version", "swift_version", "build_flags"] { #expect(build[key] != nil) }
    }

    @Test func testReopeningKeepsRowsAndRepairsATruncatedLastLine() throws {
        let dir = temporaryDirectory("repair")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/t.csv"
        do {
            let csv = try CSVAppender(path: path, header: ["a", "b"])
            try csv.append(["1", "x,y"])
            try csv.append(["2", "plain"])
        }
        // A crash mid-write: half a row without its newline.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("3,tru".utf8))
        try handle.close()
        let csv = try CSVAppender(path: path, header: ["a", "b"])
        try csv.append(["4", "after"])
        let table = try readCSV(path: path)
        #expect(table.rows.map { $0["a"]! } == ["1", "2", "4"])
        #expect(table.rows[0]["b"] == "x,y")
        #expect(throws: LabError.self) { _ = try CSVAppender(path: path, header: ["a", "c"]) }
    }

    @Test func testCSVNumbersArePlainDecimals() {
        #expect(csvNumber(12_345_678.25, decimals: 1) == "12345678.2" || csvNumber(12_345_678.25, decimals: 1) == "12345678.3")
        #expect(csvNumber(0.5) == "0.5")
        #expect(csvNumber(3) == "3")
        #expect(csvNumber(1e-9) == "0")
        #expect(csvNumber(.infinity) == "")
    }

    @Test func testLockSpecsParseOptionsAndRejectBadOnes() throws {
        let specs = try LockSpec.parseList("mcs, tas")
        #expect(specs.map(\.label) == ["mcs", "tas"])
        #expect(try LockSpec.parseList("all").count == LockRegistry.lockNames.count)
        #expect(try LockSpec.parseList("rcu").map(\.name) == LockRegistry.all.filter(\.isRCU).map(\.descriptor.name))
        #expect(throws: LockError.self) { try LockSpec(parsing: "nosuch") }
        #expect(throws: LockError.self) { try LockSpec(parsing: "mcs:depth=3") }
        #expect(throws: LockError.self) { try LockSpec(parsing: "mcs:") }
        #expect(throws: LockError.self) { try LockSpec.parseList(",") }
    }
}

// MARK: the command line

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the debug `locklab` with `arguments`, its environment this process's plus `environment`.
func locklab(_ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
    let exe = packageRoot.appendingPathComponent(".build/debug/locklab")
    let process = Process()
    process.executableURL = exe
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                         stderr: String(decoding: e, as: UTF8.self))
}

@Suite("Command line", .serialized)
struct CommandLineTests {
    static let badInputs: [([String], String)] = [
        (["run", "--lock", "nosuch", "--out", "/tmp/locklab-never"], "unknown lock 'nosuch'"),
        (["run", "--lock", "mcs:depth=2", "--out", "/tmp/locklab-never"], "has no option 'depth'"),
        (["run", "--lock", "mcs", "--threads", "0", "--out", "/tmp/locklab-never"], "--threads"),
        (["run", "--lock", "mcs", "--threads", "two", "--out", "/tmp/locklab-never"], "--threads"),
        (["run", "--lock", "mcs", "--placement", "diagonal", "--out", "/tmp/locklab-never"], "diagonal"),
        (["run", "--lock", "mcs", "--duration", "abc", "--out", "/tmp/locklab-never"], "abc"),
        (["run", "--lock", "mcs", "--mem-node", "7", "--out", "/tmp/locklab-never"], "--mem-node"),
        (["run", "--lock", "mcs", "--virtual-nodes", "99", "--out", "/tmp/locklab-never"], "--virtual-nodes"),
        (["run", "--lock", "no-lock", "--threads", "2", "--out", "/tmp/locklab-never"], "at most 1 thread"),
        (["run", "--lock", "mcs", "--synthetic", "pack:2 core:2 pu:1", "--out", "/tmp/locklab-never"], "--synthetic"),
        (["run", "--lock", "mcs", "--xml", "Tests/Fixtures/two-socket.xml", "--out", "/tmp/locklab-never"], "--xml"),
        (["run", "--lock", "mc", "--out", "/tmp/locklab-never"], "did you mean 'mcs'?"),
        (["run", "--lock", "null", "--out", "/tmp/locklab-never"], "did you mean 'no-lock'?"),
        (["run", "--lock", "backoff:max-backoff=64:max-backoff=128", "--out", "/tmp/locklab-never"], "sets option 'max-backoff' more than once"),
        (["plan", "--threads", "2", "--placement", "cpus:0,999"], "999"),
        (["run", "--lock", "mcs"], "--out"),
        (["frobnicate"], "frobnicate"),
        (["validate", "--lock", "nosuch"], "unknown lock 'nosuch'"),
        // An output folder that cannot be made: one line with the reason, not Foundation's error dump.
        (["run", "--lock", "mcs", "--out", "/etc/hostname"], "a file of that name is in the way"),
        (["sweep", "Experiments/quick.yaml", "--shard", "1/2", "--out", "/etc/hostname/shard"], "cannot create output folder /etc/hostname/shard"),
        (["validate", "--lock", "mcs", "--workload", "heap"], "heap"),
        (["validate", "--lock", "mcs", "--seconds", "0"], "--seconds"),
        (["validate", "--lock", "bravo:inner=mcs"], "one of pthread-rwlock"),
        (["run", "--lock", "bravo:table-slots=3", "--out", "/tmp/locklab-never"], "a power of two in 1...1048576"),
        // Numbers that parse but must not reach the clock, the thread planner or the busy-waits.
        (["run", "--lock", "mcs", "--duration", "inf", "--out", "/tmp/locklab-never"], "--duration: 'inf' is not valid"),
        (["run", "--lock", "mcs", "--duration", "-1", "--out", "/tmp/locklab-never"], "--duration: '-1.0' is not valid"),
        (["run", "--lock", "mcs", "--warmup", "nan", "--out", "/tmp/locklab-never"], "--warmup: 'nan' is not valid"),
        (["run", "--lock", "mcs", "--stall-timeout", "-1", "--out", "/tmp/locklab-never"], "--stall-timeout: '-1.0' is not valid"),
        (["run", "--lock", "mcs", "--threads", "100000000", "--out", "/tmp/locklab-never"], "--threads: '100000000' is not valid"),
        (["run", "--lock", "mcs", "--cs-ns", "99999999999999", "--out", "/tmp/locklab-never"], "--cs-ns: '99999999999999' is not valid"),
        (["run", "--lock", "mcs", "--ncs-ns", "-1", "--out", "/tmp/locklab-never"], "--ncs-ns: '-1' is not valid"),
        (["run", "--lock", "mcs", "--sample", "-2", "--out", "/tmp/locklab-never"], "--sample: '-2' is not valid"),
        (["run", "--lock", "mcs", "--repeat", "-1", "--out", "/tmp/locklab-never"], "--repeat: '-1' is not valid"),
        (["plan", "--threads", "100000000"], "--threads: '100000000' is not valid"),
        (["overhead", "--seconds", "inf"], "--seconds: 'inf' is not valid"),
        (["overhead", "--cpu", "99999"], "--cpu: '99999' is not valid"),
        (["overhead", "--repeat", "0"], "--repeat: '0' is not valid"),
        // Workload specs: unknown workload, unknown option, a read ratio over 100, a bad value.
        (["run", "--lock", "mcs", "--workload", "btree", "--out", "/tmp/locklab-never"], "--workload: 'btree' is not valid"),
        (["run", "--lock", "mcs", "--workload", "list:depth=3", "--out", "/tmp/locklab-never"], "--workload: 'list:depth=3' is not valid"),
        (["run", "--lock", "mcs", "--workload", "hashtable:read-ratio=101", "--out", "/tmp/locklab-never"], "read-ratio an integer in 0...100"),
        (["run", "--lock", "mcs", "--workload", "queue,pqueue:keys=x", "--out", "/tmp/locklab-never"], "--workload: 'pqueue:keys=x' is not valid"),
        // A seqlock's retried reads on a structure whose reads must not see an update.
        (["run", "--lock", "seqlock", "--workload", "hashtable:read-ratio=90", "--out", "/tmp/locklab-never"], "hashtable:read-ratio=90's reads do not"),
        (["run", "--lock", "mcs", "--cs-lines", "-1", "--out", "/tmp/locklab-never"], "--cs-lines: '-1' is not valid"),
        // Delegation: a server needs a CPU of its own and leaves the clients at least one; bad options.
        (["run", "--lock", "mcs,ffwd", "--placement", "cpus:0", "--out", "/tmp/locklab-never"], "ffwd: 1 helper thread need"),
        (["plan", "--threads", "2", "--lock", "rcl", "--placement", "cpus:0"], "1 helper thread need"),
        (["run", "--lock", "mcs,ffwd", "--placement", "os", "--out", "/tmp/locklab-never"], "ffwd: 1 helper thread need their own CPUs, but placement os"),
        (["run", "--lock", "cc-synch:help-factor=0", "--out", "/tmp/locklab-never"], "option help-factor=0 is not valid"),
        (["run", "--lock", "flat-combining:rounds=x", "--out", "/tmp/locklab-never"], "option rounds=x is not valid"),
        (["run", "--lock", "ffwd:servers=2", "--out", "/tmp/locklab-never"], "has no option 'servers'"),
    ]

    @Test("bad input: one line, exit 2", arguments: badInputs.indices)
    func testBadInputGivesOneLineAndExitCode2(index: Int) throws {
        let (arguments, mention) = Self.badInputs[index]
        let result = try locklab(arguments)
        #expect(result.status == 2, "\(arguments): exit \(result.status)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains(mention), "\(arguments): \(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/locklab-never"))
    }

    @Test func testHelpOnEveryCommand() throws {
        for command in [[], ["list"], ["topology"], ["plan"], ["run"], ["sweep"], ["torture"], ["overhead"]] {
            let result = try locklab(command + ["--help"])
            #expect(result.status == 0)
            #expect(result.stdout.contains("USAGE"))
        }
    }

    @Test func testPlanCSVHasTheDocumentedColumns() throws {
        let result = try locklab(["plan", "--threads", "4", "--synthetic", "pack:4 numa:1 core:8 pu:2",
                                  "--placement", "scatter", "--csv"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.first == "thread,cpu,core,node,package")
        #expect(lines.count == 5)
        #expect(Set(lines.dropFirst().map { $0.split(separator: ",")[3] }).count == 4)
    }

    @Test func testRunWritesResultsAndListShowsEveryLock() throws {
        let dir = temporaryDirectory("cli")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try locklab(["run", "--lock", "tas,mcs", "--threads", "1,2", "--duration", "0.05", "--warmup", "0.01",
                               "--virtual-nodes", "2", "--out", dir])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try readCSV(path: dir + "/runs.csv").rows.count == 4)
        let list = try locklab(["list", "--csv"])
        #expect(list.stdout.split(separator: "\n").count == LockRegistry.all.count + 1)
    }
}
