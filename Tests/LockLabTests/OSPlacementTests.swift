// Placement `os` (Sources/LockLab/Topology/Placement.swift): no thread pinned, the OS scheduler
// places them; each thread keeps compact's node as a label. Parsed from the command line and from
// experiment files, part of the configuration key, refused with a delegation server (nothing to
// reserve), and the threads of a run really are unpinned: their affinity mask is the process's.

import CShims
import Foundation
import Synchronization
import Testing
@testable import LockLab

@Suite("Placement os", .serialized)
struct OSPlacementTests {
    @Test func testParsesAndPrintsAsOS() throws {
        #expect(try Placement(parsing: "os") == .os)
        #expect(Placement.os.description == "os")
        #expect(throws: LabError.self) { try Placement(parsing: "OS") }
        #expect(throws: LabError.self) { try Placement(parsing: "os:0") }
    }

    @Test func testPlanLeavesEveryThreadUnpinnedWithCompactsNodeAsLabel() throws {
        let machine = try Topology.load(.synthetic("pack:2 numa:1 core:2 pu:1"))
        let compact = try machine.plan(threads: 6, placement: .compact)
        let os = try machine.plan(threads: 6, placement: .os)
        #expect(os.threads.allSatisfy { $0.cpu == nil && $0.core == nil && $0.package == nil })
        #expect(os.slots.allSatisfy { $0.cpu == nil })
        #expect(os.threads.map(\.node) == compact.threads.map(\.node))
        #expect(os.threads.map(\.node) == [0, 0, 1, 1, 0, 0])
        #expect(os.unpinned && !compact.unpinned)
        #expect(os.oversubscribed && os.cpusUsed == 4)
        #expect(os.note?.contains("oversubscribed 1.5x") == true, "\(os.note ?? "")")
        #expect(os.note?.contains("node is a label") == true, "\(os.note ?? "")")
        let fits = try machine.plan(threads: 4, placement: .os)
        #expect(!fits.oversubscribed)
        #expect(fits.note?.contains("unpinned") == true)
    }

    @Test func testADelegationServerIsRefusedUnderOS() throws {
        let machine = try Topology.load(.synthetic("pack:1 numa:1 core:4 pu:1"))
        #expect(throws: LabError.self) { try machine.plan(threads: 2, placement: .os, helpers: 1) }
        let matrix = RunMatrix(locks: try LockSpec.parseList("mcs,ffwd"), threadCounts: [2], placements: [.os])
        do {
            try matrix.validate(on: try Topology.load())
            Issue.record("ffwd under placement os was accepted")
        } catch let error as LabError {
            #expect(error.description.contains("ffwd") && error.description.contains("placement os"), "\(error)")
        }
    }

    @Test func testExperimentFileTakesOSAndTheConfigKeyNamesIt() throws {
        let text = """
            name: os-placement
            locks: [tas]
            threads: [2]
            placements: [compact, os]
            duration_s: 0.05
            warmup_s: 0.01
            """
        let topology = try Topology.load()
        let matrix = try Experiment.parse(text, file: "os.yaml").matrix(on: topology)
        #expect(matrix.placements == [.compact, .os])
        let keys = matrix.plannedRuns.map { matrix.configKey($0, topology: topology) }
        #expect(Set(keys).count == 2)
        #expect(keys.contains { $0.split(separator: "|").contains("os") })
        #expect(keys.contains { $0.split(separator: "|").contains("compact") })
    }

    @Test func testPlanCommandSaysTheNodeIsALabel() throws {
        let text = try locklab(["plan", "--threads", "3", "--placement", "os", "--synthetic", "pack:2 numa:1 core:1 pu:1"])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("node is a label"), "\(text.stdout)")
        let csv = try locklab(["plan", "--threads", "3", "--placement", "os", "--synthetic", "pack:2 numa:1 core:1 pu:1", "--csv"])
        #expect(csv.status == 0, "\(csv.stderr)")
        #expect(csv.stdout.split(separator: "\n") == ["thread,cpu,core,node,package", "0,,,0,", "1,,,1,", "2,,,0,"])
        #expect(csv.stderr.contains("node is a label"), "\(csv.stderr)")
        let server = try locklab(["plan", "--threads", "2", "--placement", "os", "--lock", "rcl"])
        #expect(server.status == 2 && server.stderr.contains("placement os pins no thread"), "\(server.stderr)")
    }

    /// The slots a run under `os` hands its ThreadGroup: every thread's affinity mask is the
    /// process's (and, as a control, compact's pinned threads' is not, where there are 2+ CPUs).
    @Test func testThreadsOfAnOSPlanAreUnpinned() throws {
        let topology = try Topology.load()
        let threads = 2 * topology.cpus.count
        func unpinnedCount(_ placement: Placement) throws -> Int {
            let unpinned = Atomic<Int>(0)
            let group = ThreadGroup(slots: try topology.plan(threads: threads, placement: placement).slots)
            try group.start { _, control in
                if cshims_self_affinity_is_process() == 1 { unpinned.add(1, ordering: .relaxed) }
                _ = control.arriveAndWait()
            }
            try group.waitUntilReady()
            group.setPhase(GroupPhase.stop)
            #expect(group.waitForFinish(stallTimeoutSeconds: 30))
            group.join()
            return unpinned.load(ordering: .relaxed)
        }
        #expect(try unpinnedCount(.os) == threads)
        if topology.cpus.count > 1 { #expect(try unpinnedCount(.compact) == 0) }
    }

    /// Oversubscribed and unpinned, a blocking and a spin-then-park lock keep mutual exclusion, and
    /// the rows say `os`, unpinned threads, and oversubscribed.
    @Test func testOversubscribedOSRunKeepsMutualExclusion() throws {
        let topology = try Topology.load()
        let threads = 4 * topology.cpus.count
        let matrix = RunMatrix(locks: try LockSpec.parseList("futex-mutex,mcs-stp,tas"), threadCounts: [threads],
                               placements: [.os], warmupSeconds: 0.01, durationSeconds: 0.1, sampleEvery: 0)
        try matrix.validate(on: topology)
        for run in matrix.plannedRuns {
            let (d, s) = try matrix.measure(run, topology: topology, runID: "1", machine: "test", gitCommit: "abc")
            #expect(s.status == .ok && s.mutexOK, "\(run.spec.label): \(s.status) \(s.failure ?? "")")
            #expect(s.totalAcquisitions > 0)
            #expect(d.placement == "os" && d.oversubscribed)
            #expect(d.configKey.contains("|os|"), "\(d.configKey)")
            #expect(s.threads.count == threads && s.threads.allSatisfy { $0.cpu == nil })
            let row = RunRecord.threadRows(d, s)
            let cpuColumn = RunRecord.threadColumns.firstIndex(of: "cpu")!
            #expect(row.allSatisfy { $0[cpuColumn] == "" })
        }
    }
}
