// What a result is (issue 15): the build id names the code that was compiled, taken at build time;
// the machine id tells machines apart; a results folder refuses another build or machine. And no
// subprocess at run time: a run under `ulimit -v 3000000` finishes (issue 10, §5).

import Foundation
import Testing
@testable import LockLab

private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

/// Runs a command, returning its exit status and standard output.
@discardableResult
func shell(_ command: String, in directory: String? = nil, environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", command]
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

@Suite("Build and machine identity", .serialized)
struct IdentityTests {
    /// The build-time tool, built beside the executable.
    var tool: String { root.appendingPathComponent(".build/debug/locklab-build-identity").path }

    @Test func testSourceDigestIsTakenAtBuildTimeOverTheBuildsFiles() throws {
        // The plugin's rule restated independently (Python's hashlib): every file under Sources/,
        // CShims/ and Plugins/ (no dot-files), Package.swift and Package.resolved, sorted; for each,
        // path NUL size NUL bytes. The embedded digest must be exactly that of this checkout.
        let script = """
            import hashlib, os, sys
            files = []
            for top in ("Sources", "CShims", "Plugins"):
                for d, dirs, names in os.walk(top):
                    dirs[:] = [x for x in dirs if not x.startswith(".")]
                    files += [os.path.join(d, n) for n in names if not n.startswith(".")]
            files += [f for f in ("Package.swift", "Package.resolved") if os.path.isfile(f)]
            h = hashlib.sha256()
            for f in sorted(files):
                data = open(f, "rb").read()
                h.update(f.encode() + b"\\0" + str(len(data)).encode() + b"\\0" + data)
            print(h.hexdigest(), len(files))
            """
        let result = try shell("python3 -c '\(script)'", in: root.path)
        #expect(result.status == 0, "\(result.output)")
        let expected = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let build = BuildInfo.current()
        #expect(expected == "\(build.sourceDigest ?? "") \(BuildInfo.sourceFileCount)",
                "rebuild first (swift build --build-tests): the binary's sources differ from the checkout")
        #expect(build.buildID == BuildInfo.buildID(sourceDigest: build.sourceDigest ?? "", flags: build.flags))
        #expect(build.buildID?.count == 16)
        #expect(build.swiftVersion.split(separator: ".").count == 3, "exact Swift version: \(build.swiftVersion)")
    }

    @Test func testDigestChangesWhenAFileChangesAndNotOtherwise() throws {
        let dir = temporaryDirectory("digest")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/Sources", withIntermediateDirectories: true)
        try "let a = 1\n".write(toFile: dir + "/Sources/A.swift", atomically: true, encoding: .utf8)
        try "let b = 2\n".write(toFile: dir + "/Sources/B.swift", atomically: true, encoding: .utf8)
        try "readme\n".write(toFile: dir + "/README.md", atomically: true, encoding: .utf8)
        func digest() throws -> String {
            let r = try shell("'\(tool)' --digest '\(dir)' Sources/A.swift Sources/B.swift")
            #expect(r.status == 0, "\(r.output)")
            return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let original = try digest()
        #expect(original.count == 64)
        // Not otherwise: the same bytes again, a touched file, a file outside the build.
        #expect(try digest() == original)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 3600)],
                                              ofItemAtPath: dir + "/Sources/A.swift")
        #expect(try digest() == original)
        try "changed\n".write(toFile: dir + "/README.md", atomically: true, encoding: .utf8)
        #expect(try digest() == original)
        // A changed byte, and bytes moved between files, each change it.
        try "let a = 3\n".write(toFile: dir + "/Sources/A.swift", atomically: true, encoding: .utf8)
        let edited = try digest()
        #expect(edited != original)
        try "let a = 3\nlet".write(toFile: dir + "/Sources/A.swift", atomically: true, encoding: .utf8)
        try " b = 2\n".write(toFile: dir + "/Sources/B.swift", atomically: true, encoding: .utf8)
        #expect(try digest() != edited)
        // The tool's SHA-256 is SHA-256 (checked against Python's hashlib on a file of 1000 bytes,
        // which crosses block boundaries).
        try Data((0..<1000).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: dir + "/Sources/bin"))
        let ours = try shell("'\(tool)' --digest '\(dir)' Sources/bin").output
        let python = try shell("python3 -c 'import hashlib; d = open(\"Sources/bin\", \"rb\").read(); print(hashlib.sha256(b\"Sources/bin\\0\" + str(len(d)).encode() + b\"\\0\" + d).hexdigest())'", in: dir).output
        #expect(ours == python && ours.count == 65, "\(ours) vs \(python)")
    }

    @Test func testBuildIDFollowsFlagsAndMachineIDFollowsModelTopologyKernel() {
        let digest = String(repeating: "a", count: 64)
        #expect(BuildInfo.buildID(sourceDigest: digest, flags: "release") != BuildInfo.buildID(sourceDigest: digest, flags: "debug"))
        #expect(BuildInfo.buildID(sourceDigest: digest, flags: "x") == BuildInfo.buildID(sourceDigest: digest, flags: "x"))
        let base = MachineInfo.machineID(cpuModel: "AMD EPYC 7B13", topologyFingerprint: "1 package", kernel: "6.1")
        #expect(base != MachineInfo.machineID(cpuModel: "Intel(R) Xeon(R)", topologyFingerprint: "1 package", kernel: "6.1"))
        #expect(base != MachineInfo.machineID(cpuModel: "AMD EPYC 7B13", topologyFingerprint: "2 packages", kernel: "6.1"))
        #expect(base != MachineInfo.machineID(cpuModel: "AMD EPYC 7B13", topologyFingerprint: "1 package", kernel: "6.2"))
        let here = MachineInfo.current()
        #expect(here.machineID?.count == 16)
        #expect(here.topologyFingerprint?.contains("PU") == true)
        #expect(SysfsTopology.parseCPUList("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11])
        #expect(SysfsTopology.parseCPUList("junk,5") == [5])
    }

    @Test func testFolderRefusesAnotherBuildAndAnotherMachine() throws {
        let dir = temporaryDirectory("mixing")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let machine = MachineInfo.current()
        let build = BuildInfo.current()
        _ = try Manifest.record(in: dir, machine: machine, build: build, topology: "t", latencySampling: "", command: "a")
        _ = try Manifest.record(in: dir, machine: machine, build: build, topology: "t", latencySampling: "", command: "b")
        var otherBuild = build
        otherBuild.buildID = "0000000000000000" // same commit label, other code (an uncommitted edit)
        #expect(throws: LabError.self) {
            try Manifest.record(in: dir, machine: machine, build: otherBuild, topology: "t", latencySampling: "", command: "c")
        }
        var otherMachine = machine
        otherMachine.cpuModel = "AMD EPYC 7B13"
        otherMachine.machineID = "1111111111111111" // same host name
        #expect(throws: LabError.self) {
            try Manifest.record(in: dir, machine: otherMachine, build: build, topology: "t", latencySampling: "", command: "d")
        }
        // A manifest from before identities cannot vouch for its builds: refused too.
        var old = build
        old.buildID = nil
        #expect(Manifest(machine: machine, build: old, topology: "t", latencySampling: "", invocations: [])
            .conflict(machine: machine, build: build, topology: "t") != nil)
        #expect(Manifest.read(in: dir)?.invocations.count == 2)
    }

    @Test func testRunAndSweepRefuseAStaleBuildAndReplaceStaleMovesItAside() throws {
        let dir = temporaryDirectory("stale")
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: (dir as NSString).deletingLastPathComponent)) ?? []
            where entry.hasPrefix((dir as NSString).lastPathComponent + ".stale-") {
                try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent + "/" + entry)
            }
        }
        let first = try locklab(["run", "--lock", "tas", "--threads", "1", "--duration", "0.05", "--warmup", "0", "--out", dir])
        #expect(first.status == 0, "\(first.stderr)")
        let rows = try readCSV(path: dir + "/runs.csv").rows
        // (The executable's build, which is not this test process's under ThreadSanitizer.)
        let buildID = try #require(Manifest.read(in: dir)?.build.buildID)
        #expect(rows.first?["build_id"] == buildID)
        #expect(rows.first?["machine_id"] == MachineInfo.current().machineID)
        // The folder as an edited build (same commit, other code) would have left it.
        let path = dir + "/manifest.json"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: buildID, with: "feedfacefeedface")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let again = try locklab(["run", "--lock", "tas", "--threads", "1", "--duration", "0.05", "--warmup", "0", "--out", dir])
        #expect(again.status == 2)
        #expect(again.stderr.contains("build feedfacefeedface"), "\(again.stderr)")
        let file = try writeFile("name: stale\nlocks: [tas]\nthreads: [1]\nrepeats: 1\nduration_s: 0.05\nwarmup_s: 0\n", name: "stale.yaml")
        let sweep = try locklab(["sweep", file, "--out", dir])
        #expect(sweep.status == 2, "\(sweep.stdout)")
        let replaced = try locklab(["sweep", file, "--out", dir, "--replace-stale"])
        #expect(replaced.status == 0, "\(replaced.stdout)\n\(replaced.stderr)")
        #expect(replaced.stdout.contains("moved to \(dir).stale-feedfacefeedface"), "\(replaced.stdout)")
        #expect(FileManager.default.fileExists(atPath: dir + ".stale-feedfacefeedface/runs.csv"))
        #expect(try readCSV(path: dir + "/runs.csv").rows.count == 1)
    }

    @Test func testARunNeedsNoSubprocessAndFinishesUnderAnAddressSpaceLimit() throws {
        // Under `ulimit -v 3000000` the Foundation/libdispatch machinery that ran `git` for the
        // manifest hung; provenance is now fixed at build time. 60 s is far beyond the run's 0.05 s.
        let dir = temporaryDirectory("ulimit")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let exe = root.appendingPathComponent(".build/debug/locklab").path
        let result = try shell("ulimit -v 3000000; timeout 60 '\(exe)' run --lock tas --threads 1 --duration 0.05 --warmup 0 --out '\(dir)'")
        #expect(result.status == 0, "\(result.output)")
        #expect(try readCSV(path: dir + "/runs.csv").rows.count == 1)
    }
}
