// Every CSV the lab writes is RFC 4180 and reads back the same in Python's csv module and in
// pandas at its default settings, with no value taken for missing (issue 15: a lock called `null`
// vanished from a group-by; `list --csv` wrote unescaped quotes).

import Foundation
import Testing
@testable import LockLab

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// The Python the report uses: $LOCKLAB_PYTHON (make exports the .venv's), the checkout's .venv, or python3.
var reportPython: String {
    if let p = ProcessInfo.processInfo.environment["LOCKLAB_PYTHON"], !p.isEmpty { return p }
    let venv = root.appendingPathComponent(".venv/bin/python3").path
    return FileManager.default.isExecutableFile(atPath: venv) ? venv : "python3"
}

@Suite("CSV round trip", .serialized)
struct CSVRoundTripTests {
    func roundTrip(_ paths: [String]) throws {
        let checker = root.appendingPathComponent("Tests/Support/csv_roundtrip.py").path
        let result = try shell("'\(reportPython)' '\(checker)' " + paths.map { "'\($0)'" }.joined(separator: " "))
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("\(paths.count) CSV files, 0 problems"), "\(result.output)")
    }

    @Test func testTheWriterQuotesWhatNeedsQuotingAndNothingElse() throws {
        #expect(CSVFormat.line(["a", "b c", "1.5", ""]) == "a,b c,1.5,")
        #expect(CSVFormat.line(["x,y", "say \"hi\"", "two\nlines"]) == "\"x,y\",\"say \"\"hi\"\"\",\"two\nlines\"")
        #expect(CSVFormat.line(["caf\u{e9}"]) == "caf?")
        let text = CSVFormat.table(header: ["a", "b"], rows: [["x,y", "say \"hi\""], ["", "two\nlines"]])
        #expect(try CSVFormat.records(text) == [["a", "b"], ["x,y", "say \"hi\""], ["", "two\nlines"]])
    }

    @Test(.timeLimit(.minutes(3)))
    func testEveryCSVTheLabWritesReadsBackInCSVAndPandas() throws {
        let dir = temporaryDirectory("csv")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // list --csv (paper titles with quotes and commas), plan --csv.
        let list = try locklab(["list", "--csv"])
        #expect(list.status == 0)
        try list.stdout.write(toFile: dir + "/list.csv", atomically: true, encoding: .utf8)
        let plan = try locklab(["plan", "--threads", "6", "--placement", "scatter", "--synthetic", "pack:2 core:2 pu:2", "--csv"])
        #expect(plan.status == 0)
        try plan.stdout.write(toFile: dir + "/plan.csv", atomically: true, encoding: .utf8)
        // runs.csv and threads.csv of a sweep whose name needs quoting, with the harness-only
        // lock in it; then the report's fits.csv.
        let file = try writeFile("""
            name: 'a "quoted", name'
            locks: [no-lock, tas, "backoff:max-backoff=64"]
            threads: [1, 2]
            repeats: 2
            duration_s: 0.05
            warmup_s: 0
            report:
              figures: [throughput]

            """, name: "csv.yaml")
        let out = dir + "/sweep"
        let sweep = try locklab(["sweep", file, "--out", out, "--report"], environment: ["LOCKLAB_PYTHON": reportPython])
        #expect(sweep.status == 0, "\(sweep.stdout)\(sweep.stderr)")
        let rows = try readCSV(path: out + "/runs.csv").rows
        #expect(rows.contains { $0["lock"] == "no-lock" })
        #expect(rows.allSatisfy { $0["experiment"] == "a \"quoted\", name" })
        // The coherence probe's coherence.csv and handover_lines.csv (lock names, line models).
        let probe = try locklab(["coherence", "--reps", "50", "--out", dir + "/coherence"])
        #expect(probe.status == 0, "\(probe.stderr)")
        var paths = [dir + "/list.csv", dir + "/plan.csv", out + "/runs.csv", out + "/threads.csv",
                     dir + "/coherence/coherence.csv", dir + "/coherence/handover_lines.csv"]
        if FileManager.default.fileExists(atPath: out + "/fits.csv") { paths.append(out + "/fits.csv") }
        #expect(paths.count == 7, "the report wrote no fits.csv: \(sweep.stderr)")
        try roundTrip(paths)
    }

    @Test func testNoLockWaitingFamilyOrStatusNameReadsAsMissing() throws {
        // pandas' default missing-value strings (and R's NA), against every name the lab writes.
        let missing: Set<String> = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                                    "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
        var names = LockRegistry.all.map(\.descriptor).flatMap { d in
            [d.name, d.family.rawValue, d.waiting.rawValue] + d.options.map(\.key)
        }
        names += WorkloadKind.allCases.flatMap { [$0.rawValue] + $0.options.map(\.key) }
        names += ["ok", "mutex-violation", "hung", "failed", "compact", "scatter", "local", "interleave"]
        names += [RunStatus.ok.rawValue, RunStatus.hung.rawValue, RunStatus.mutexViolation.rawValue]
        for name in names {
            #expect(!missing.contains(name) && !missing.contains(name.lowercased()) && !missing.contains(name.uppercased()),
                    "'\(name)' reads as a missing value")
        }
    }
}
