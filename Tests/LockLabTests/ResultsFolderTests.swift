// Where results go (issue 15): committed reference results in results/reference/, which no run
// writes to; a user's runs in results/local/ (git-ignored). `make quick` in a scratch clone leaves
// `git status` clean and the reference folder untouched.

import Foundation
import Testing
@testable import LockLab

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

@Suite("Results folders", .serialized)
struct ResultsFolderTests {
    static let tinyExperiment = """
        name: quick
        locks: [tas, ticket]
        threads: [1, 2]
        repeats: 1
        duration_s: 0.05
        warmup_s: 0
        report:
          figures: [throughput]

        """

    @Test func testRunsAndSweepsRefuseTheReferenceFolder() throws {
        let reference = root.appendingPathComponent("results/reference").path
        #expect(FileManager.default.fileExists(atPath: reference + "/" + Manifest.referenceMarker))
        let target = reference + "/nosuch-machine/quick"
        let file = try writeFile(Self.tinyExperiment, name: "tiny.yaml")
        for arguments in [["run", "--lock", "tas", "--threads", "1", "--duration", "0.05", "--out", target],
                          ["sweep", file, "--out", target],
                          ["sweep", file, "--out", target, "--replace-stale"]] {
            let result = try locklab(arguments)
            #expect(result.status == 2, "\(arguments): \(result.stdout)")
            #expect(result.stderr.contains("committed reference results"), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
            #expect(!FileManager.default.fileExists(atPath: reference + "/nosuch-machine"))
        }
        // A folder merely named like it elsewhere is fine (the marker decides, not the name).
        #expect(throws: Never.self) { try Manifest.refuseReferenceFolder(temporaryDirectory("reference")) }
    }

    // About 40 s (a venv, a tiny sweep and its report): not again under ThreadSanitizer, where it
    // would check nothing new (it runs the ordinary build).
    @Test(.timeLimit(.minutes(5)), .disabled(if: ThreadSanitizer.isActive, "the Makefile and git, not concurrency"))
    func testMakeQuickInAFreshCloneLeavesGitStatusCleanAndTheReferenceUntouched() throws {
        let scratch = temporaryDirectory("clone")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // A clone of the committed tree (what CI and a new user get).
        let clone = try shell("git clone -q --shared '\(root.path)' '\(scratch)'")
        #expect(clone.status == 0, "\(clone.output)")
        let exe = root.appendingPathComponent(".build/debug/locklab").path
        let experiment = try writeFile(Self.tinyExperiment, name: "quick-tiny.yaml")
        // `make quick` as a user runs it, but with this build (-o build: no release build in the
        // clone) and a tiny experiment; setup-python makes the clone's own .venv.
        let env = ["LOCKLAB_PYTHON": "", "MAKEFLAGS": ""]
        let quick = try shell("make -o build -o setup-system quick LOCKLAB='\(exe)' QUICK_EXPERIMENT='\(experiment)' MACHINE=vm-2cpu 2>&1",
                              in: scratch, environment: env)
        #expect(quick.status == 0, "\(quick.output)")
        #expect(FileManager.default.fileExists(atPath: scratch + "/results/local/vm-2cpu/quick/runs.csv"))
        #expect(FileManager.default.fileExists(atPath: scratch + "/results/local/vm-2cpu/quick/report.md"))
        #expect(FileManager.default.fileExists(atPath: scratch + "/.venv/bin/python3"))
        var status = try shell("git status --porcelain --untracked-files=all", in: scratch)
        #expect(status.status == 0 && status.output.isEmpty, "git status after make quick:\n\(status.output)")
        // Pointed at the reference folder on purpose (the old default's name), it refuses and
        // changes nothing.
        let aimed = try shell("make -o build -o setup-system quick LOCKLAB='\(exe)' QUICK_EXPERIMENT='\(experiment)' RESULTS=results/reference/epyc-2vcpu-vm 2>&1",
                              in: scratch, environment: env)
        #expect(aimed.status != 0)
        #expect(aimed.output.contains("committed reference results"), "\(aimed.output)")
        status = try shell("git status --porcelain --untracked-files=all", in: scratch)
        #expect(status.output.isEmpty, "git status after a refused run:\n\(status.output)")
    }
}
