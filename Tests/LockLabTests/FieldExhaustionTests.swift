// Issue 10, section 5: running out of resources fails a run cleanly instead of crashing or hanging,
// and no plan is built that cannot be (caps everywhere, checked before building).
// The field case: `ulimit -v 6000000; ulimit -s 1048576` (1 GB stacks in 6 GB of address space), then
// `locklab run --lock tas --threads 8`: pthread_create fails with EAGAIN after a few threads.

import Foundation
import Testing
@testable import LockLab

/// Runs the debug `locklab` under a shell with the given ulimits.
private func locklabLimited(_ limits: String, _ arguments: [String]) throws -> CommandResult {
    let exe = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/locklab").path
    let quoted = ([exe] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", "\(limits); exec \(quoted)"]
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return CommandResult(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                         stderr: String(decoding: e, as: UTF8.self))
}

/// 1 GB stacks in 6 GB of address space: a handful of threads fit, 64 do not. A machine whose
/// hard stack limit is below 1 GB cannot raise it: the shell exits 77 and the test says so.
private let fieldLimits = "ulimit -v 6000000 && { ulimit -s 1048576 2>/dev/null || exit 77; }"

/// True (and a note) when the limits could not be set on this machine.
private func limitsUnavailable(_ result: CommandResult) -> Bool {
    guard result.status == 77 else { return false }
    print("note: skipped: cannot raise the stack limit to 1 GB here (hard limit lower)")
    return true
}

@Suite("Field: resource exhaustion", .serialized)
struct ExhaustionTests {
    @Test func testThreadsThatCannotBeCreatedFailTheRunInOneLine() throws {
        let dir = temporaryDirectory("ulimit-run")
        let result = try locklabLimited(fieldLimits, ["run", "--lock", "tas", "--threads", "64", "--duration", "0.05",
                                                      "--warmup", "0", "--out", dir])
        if limitsUnavailable(result) { return }
        // Not a crash (132 SIGILL, 134, 139) nor a hang: exit 2 with one line on stderr.
        #expect(result.status == 2, "exit \(result.status): \(result.stderr)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("cannot create thread"), "\(result.stderr)")
        let rows = try readCSV(path: dir + "/runs.csv").rows
        #expect(rows.count == 1)
        #expect(rows.first?["status"] == "failed")
        #expect(rows.first?["failure"]?.contains("cannot create thread") == true, "\(rows)")
    }

    @Test func testASweepRecordsTheFailedRunAndGoesOnAndAgain() throws {
        let dir = temporaryDirectory("ulimit-sweep")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let file = dir + "/exhaust.yaml"
        try "locks: [tas]\nthreads: [1, 64]\nrepeats: 2\nduration_s: 0.02\nwarmup_s: 0\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let first = try locklabLimited(fieldLimits, ["sweep", file, "--out", dir + "/out"])
        if limitsUnavailable(first) { return }
        #expect(first.status == 2, "exit \(first.status): \(first.stderr)")
        #expect(first.stderr.split(separator: "\n").count == 1, "\(first.stderr)")
        let rows = try readCSV(path: dir + "/out/runs.csv").rows
        #expect(rows.count == 4, "every run recorded, the failed ones too")
        #expect(rows.filter { $0["threads"] == "64" }.allSatisfy { $0["status"] == "failed" && $0["failure"]?.isEmpty == false })
        #expect(rows.filter { $0["threads"] != "64" }.allSatisfy { $0["status"] == "ok" })
        // A rerun does not die at the same run: everything is recorded, it says so and exits non-zero.
        let again = try locklabLimited(fieldLimits, ["sweep", file, "--out", dir + "/out"])
        #expect(again.status == 2)
        #expect(again.stdout.contains("4 already recorded"), "\(again.stdout)")
        #expect(try readCSV(path: dir + "/out/runs.csv").rows.count == 4)
    }

    @Test func testRepeatsAndMatricesAreCappedBeforeTheyAreBuilt() throws {
        // The field case: --repeat 1000000000 grew to 2 GB building its plan; now one line, at once.
        let started = Date()
        let result = try locklab(["run", "--lock", "tas", "--threads", "1", "--repeat", "1000000000", "--out", "/tmp/locklab-never"])
        #expect(result.status == 2)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("--repeat: '1000000000' is not valid; expected a count in 1...10000"))
        #expect(Date().timeIntervalSince(started) < 20)
        // Siblings: a matrix under every single cap but too large as a whole; an experiment file
        // whose workload lists multiply past the cap; both refused without building anything.
        let matrix = RunMatrix(locks: try LockSpec.parseList("all"), threadCounts: Array(1...1000), repeats: 10_000)
        #expect((matrix.plannedRunCount ?? .max) > Limits.maxPlannedRuns)
        #expect(throws: LabError.self) { try matrix.validate(on: try Topology.load()) }
        let wide = (0..<30).map(String.init).joined(separator: ", ")
        do {
            _ = try Experiment.parse("locks: [tas]\nthreads: [1]\nworkload:\n  cs_lines: [\(wide)]\n  cs_ns: [\(wide)]\n  ncs_ns: [\(wide)]\n",
                                     file: "wide.yaml")
            Issue.record("27000 workloads accepted")
        } catch let e as ExperimentFileError {
            #expect(e.description.contains("field 'workload'") && e.description.contains("more than 10000"))
        }
        let sweepFile = temporaryDirectory("huge-sweep") + ".yaml"
        try "locks: [all]\nthreads: [\"1..all\"]\nrepeats: 10000\nworkload:\n  cs_ns: [\((0..<100).map(String.init).joined(separator: ","))]\n"
            .write(toFile: sweepFile, atomically: true, encoding: .utf8)
        let sweep = try locklab(["sweep", sweepFile, "--dry-run", "--out", "/tmp/locklab-never"])
        #expect(sweep.status == 2)
        #expect(sweep.stderr.contains("more than 1000000"), "\(sweep.stderr)")
    }

    @Test func testAMatrixAtTheCapsCountsWithoutOverflow() {
        let matrix = RunMatrix(locks: [], threadCounts: [1], repeats: Int.max)
        #expect(matrix.plannedRunCount == 0)
        let huge = RunMatrix(locks: (try? LockSpec.parseList("all")) ?? [], threadCounts: Array(1...8192),
                             repeats: Int.max / 2)
        #expect(huge.plannedRunCount == nil)
    }
}
