// Issue 10, section 3: a memory placement that did not take effect is recorded as what it was.
// The field case: a container whose seccomp profile denies mbind/set_mempolicy (Docker's default
// without CAP_SYS_NICE), reproduced with an LD_PRELOAD library (Tests/Fixtures/numa-eperm.c, the
// field report's reproducer) that makes those calls fail with EPERM.

import Foundation
import Testing
@testable import LockLab

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

/// A second preload, for the sibling the field file does not cover: mbind works but get_mempolicy
/// is denied, so the placement cannot be checked.
private let denyGetSource = """
    #define _GNU_SOURCE
    #include <errno.h>
    #include <stdarg.h>
    #include <sys/syscall.h>
    #include <dlfcn.h>
    long syscall(long nr, ...) {
        va_list ap; va_start(ap, nr); long a[6]; for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long); va_end(ap);
        static long (*real)(long, ...) = 0;
        if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
        if (nr == SYS_get_mempolicy && a[3] != 0) { errno = EPERM; return -1; } /* MPOL_F_ADDR look-ups only */
        return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    }
    long get_mempolicy(int *mode, unsigned long *nodemask, unsigned long maxnode, void *addr, unsigned flags) {
        return syscall(SYS_get_mempolicy, mode, nodemask, maxnode, addr, flags);
    }
    """

/// Compiles a preload library once per process; nil (and the test returns) without gcc.
private func preload(_ name: String, source: String? = nil) throws -> String? {
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/gcc") else {
        print("note: skipped: no /usr/bin/gcc to build the LD_PRELOAD reproducer")
        return nil
    }
    let dir = temporaryDirectory("preload-\(name)")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var input = fixtures + "/numa-eperm.c"
    if let source {
        input = dir + "/\(name).c"
        try source.write(toFile: input, atomically: true, encoding: .utf8)
    }
    let library = dir + "/\(name).so"
    let gcc = Process()
    gcc.executableURL = URL(fileURLWithPath: "/usr/bin/gcc")
    gcc.arguments = ["-shared", "-fPIC", "-O1", "-o", library, input, "-ldl"]
    try gcc.run()
    gcc.waitUntilExit()
    #expect(gcc.terminationStatus == 0)
    return gcc.terminationStatus == 0 ? library : nil
}

@Suite("Field: memory placement that did not take effect", .serialized)
struct MemoryPolicyTests {
    @Test func testPlacementIsVerifiedWhereTheKernelAllowsIt() throws {
        guard LabMemory.numaAvailable, LabMemory.policyProbe == "settable" else { return }
        for (policy, expected) in [(MemoryPolicy.node(0), "0"), (.interleave, "interleave"), (.local, "local")] {
            let memory = LabMemory(policy: policy)
            let p = memory.allocate(bytes: 4096)
            #expect(memory.placement.applied == expected, "\(policy)")
            #expect(memory.placement.note == nil)
            memory.deallocate(p, bytes: 4096)
        }
    }

    @Test func testTheLogKeepsTheWorstOutcome() {
        let log = MemoryPlacementLog(policy: .node(1))
        log.record(.applied)
        #expect(log.applied == "1" && log.note == nil)
        log.record(.unverified("get_mempolicy: EPERM"))
        #expect(log.applied == "unverified")
        #expect(log.note?.contains("cannot be verified") == true)
        log.record(.notApplied("mbind: EPERM"))
        #expect(log.applied == "local")
        log.record(.unverified("later"))
        #expect(log.applied == "local")
        #expect(log.note?.contains("was not applied (mbind: EPERM)") == true)
    }

    private func runUnder(_ library: String, mode: String, memNode: String) throws -> (CommandResult, [[String: String]], String) {
        let dir = temporaryDirectory("eperm-\(mode)-\(memNode)")
        let result = try locklab(["run", "--lock", "mcs", "--threads", "2", "--mem-node", memNode, "--duration", "0.05",
                                  "--warmup", "0", "--out", dir],
                                 environment: ["LD_PRELOAD": library, "DENY_MODE": mode])
        let rows = (try? readCSV(path: dir + "/runs.csv").rows) ?? []
        let manifest = (try? String(contentsOfFile: dir + "/manifest.json", encoding: .utf8)) ?? ""
        return (result, rows, manifest)
    }

    @Test(arguments: ["all", "mbind"], ["0", "interleave"])
    func testDeniedPlacementIsRecordedAsLocalWithANote(mode: String, memNode: String) throws {
        guard let library = try preload("numa-eperm") else { return }
        let (result, rows, manifest) = try runUnder(library, mode: mode, memNode: memNode)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(rows.count == 1)
        #expect(rows.first?["mem_node"] == memNode)
        #expect(rows.first?["mem_policy_applied"] == "local", "\(rows)")
        #expect(result.stdout.contains("note: --mem-node \(memNode) was not applied"), "\(result.stdout)")
        #expect(manifest.contains("\"mem_policy\" : \"denied") || manifest.contains("\"mem_policy\" : \"unavailable"),
                "\(manifest)")
    }

    @Test func testLocalRunsUnderTheSameProfileNeedNoNote() throws {
        guard let library = try preload("numa-eperm") else { return }
        let (result, rows, _) = try runUnder(library, mode: "mbind", memNode: "local")
        #expect(result.status == 0)
        #expect(rows.first?["mem_policy_applied"] == "local")
        #expect(!result.stdout.contains("was not applied"))
    }

    @Test func testPlacementThatCannotBeCheckedSaysUnverified() throws {
        guard LabMemory.policyProbe == "settable", let library = try preload("deny-get", source: denyGetSource) else { return }
        let (result, rows, _) = try runUnder(library, mode: "", memNode: "0")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(rows.first?["mem_policy_applied"] == "unverified", "\(rows)")
        #expect(result.stdout.contains("cannot be verified"))
    }

    @Test func testASweepRecordsAndNotesTheDeniedPlacementOnce() throws {
        guard let library = try preload("numa-eperm") else { return }
        let dir = temporaryDirectory("eperm-sweep")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let file = dir + "/mem.yaml"
        try "locks: [tas, mcs]\nthreads: [1]\nmem_node: 0\nduration_s: 0.02\nwarmup_s: 0\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let result = try locklab(["sweep", file, "--out", dir + "/out"], environment: ["LD_PRELOAD": library, "DENY_MODE": "mbind"])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try readCSV(path: dir + "/out/runs.csv").rows
        #expect(rows.count == 2)
        #expect(rows.allSatisfy { $0["mem_policy_applied"] == "local" })
        #expect(result.stdout.components(separatedBy: "was not applied").count == 2, "\(result.stdout)")
    }
}
