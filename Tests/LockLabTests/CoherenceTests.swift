// The coherence probe: distance classes on synthetic, XML and virtual topologies; the probe on this
// machine; the handover-ceiling arithmetic on a hand-made coherence file; bad input.

import Foundation
import CShims
import Testing
@testable import LockLab

/// 2 packages x 2 NUMA nodes x 2 L3 groups x 2 cores x 2 PUs: every distance class but `virtual`.
private let everyClass = "pack:2 numa:2 l3:2 core:2 pu:2"
/// The same machine as XML (`lstopo -i "pack:2 numa:2 l3:2 core:2 pu:2" --of xml`).
private let everyClassXML = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/two-package-smt-l3.xml").path

@Suite("Coherence probe: distance classes")
struct CoherenceDistanceTests {
    /// cpu 0 against 1 (its SMT sibling), 2 (next core, same L3), 4 (other L3, same node),
    /// 8 (other node, same package) and 16 (other package).
    private func checkEveryClass(_ machine: Topology) throws {
        #expect(machine.distance(cpu: 0, cpu: 1) == .smt)
        #expect(machine.distance(cpu: 0, cpu: 2) == .sameL3)
        #expect(machine.distance(cpu: 0, cpu: 4) == .sameNode)
        #expect(machine.distance(cpu: 0, cpu: 8) == .otherNode)
        #expect(machine.distance(cpu: 0, cpu: 16) == .otherPackage)
        #expect(machine.distance(cpu: 31, cpu: 0) == .otherPackage)
        #expect(machine.distance(cpu: 0, cpu: 99) == nil)
        let pairs = try machine.representativePairs()
        #expect(pairs.map(\.distance) == [.smt, .sameL3, .sameNode, .otherNode, .otherPackage])
        #expect(pairs.map { [$0.owner, $0.timer] } == [[0, 1], [0, 2], [0, 4], [0, 8], [0, 16]])
        // The heat map: every ordered pair once, the representative pairs left to the matrix.
        let plan = try CoherencePlan.make(on: machine, cpus: nil)
        #expect(plan.matrixPairs == pairs)
        #expect(plan.heatMapPairs.count == 32 * 31 - 5)
        #expect(Set(plan.heatMapPairs.map { [$0.owner, $0.timer] }).count == plan.heatMapPairs.count)
        #expect(!plan.heatMapPairs.contains { $0.owner == 0 && $0.timer == 1 })
        #expect(plan.heatMapPairs.contains { $0.owner == 1 && $0.timer == 0 && $0.distance == .smt })
    }

    @Test func testSyntheticTwoPackagesSMTAndL3GroupsGiveEveryClass() throws {
        try checkEveryClass(try Topology.load(.synthetic(everyClass)))
    }

    @Test func testXMLTopologyGivesTheSameClasses() throws {
        try checkEveryClass(try Topology.load(.xml(everyClassXML)))
    }

    @Test func testLinuxNumberedSiblingsAreSMT() throws {
        // Siblings are cpu i and i+8, as Linux numbers them on x86.
        let machine = try Topology.load(.synthetic("pack:2 numa:1 l3:1 core:4 pu:2(indexes=0,8,1,9,2,10,3,11,4,12,5,13,6,14,7,15)"))
        #expect(machine.distance(cpu: 0, cpu: 8) == .smt)
        #expect(machine.distance(cpu: 0, cpu: 1) == .sameL3)
        #expect(machine.distance(cpu: 0, cpu: 4) == .otherPackage)
        #expect(try machine.representativePairs().map { [$0.owner, $0.timer] } == [[0, 8], [0, 1], [0, 4]])
    }

    @Test func testVirtualNodesAreClassedVirtualNotRemote() throws {
        let machine = try Topology.load(.synthetic("pack:1 numa:1 l3:1 core:4 pu:2"), virtualNodes: 2)
        // Cores 0-1 (cpus 0-3) are virtual node 0, cores 2-3 (cpus 4-7) virtual node 1.
        #expect(machine.distance(cpu: 0, cpu: 1) == .smt)
        #expect(machine.distance(cpu: 0, cpu: 2) == .sameL3)
        #expect(machine.distance(cpu: 0, cpu: 4) == .virtual)
        #expect(try machine.representativePairs().map(\.distance) == [.smt, .sameL3, .virtual])
        // Virtual nodes never hide a real boundary.
        let twoPackages = try Topology.load(.synthetic("pack:2 numa:1 l3:1 core:2 pu:1"), virtualNodes: 4)
        #expect(twoPackages.distance(cpu: 0, cpu: 2) == .otherPackage)
        #expect(twoPackages.distance(cpu: 0, cpu: 1) == .virtual)
    }

    @Test func testWithoutL3InformationSameL3IsNeverClaimed() throws {
        let machine = try Topology.load(.synthetic("pack:2 core:2 pu:1"))
        #expect(machine.distance(cpu: 0, cpu: 1) == .sameNode)
        #expect(machine.distance(cpu: 0, cpu: 2) == .otherPackage)
    }

    @Test func testOneCPUAndBadPairsAreRefused() throws {
        let single = try Topology.load(.synthetic("pack:1 core:1 pu:1"))
        #expect(throws: LabError.self) { try single.representativePairs() }
        #expect(throws: LabError.self) { try CoherencePlan.make(on: single, cpus: nil) }
        #expect(throws: LabError.self) { try single.probePair(parsing: "0,1") }
        let machine = try Topology.load(.synthetic(everyClass))
        for bad in ["", "0", "0,0", "0,32", "-1,2", "a,b", "0,1,2", "0;1", ",1"] {
            #expect(throws: LabError.self, "\(bad)") { try machine.probePair(parsing: bad) }
        }
        #expect(try machine.probePair(parsing: " 3 , 19 ") == ProbePair(owner: 3, timer: 19, distance: .otherPackage))
    }
}

@Suite("Coherence probe: measuring", .serialized)
struct CoherenceMeasureTests {
    @Test func testStatisticsSubtractTheOverheadAndRankNearest() {
        let buffer = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 100)
        defer { buffer.deallocate() }
        for i in 0..<100 { buffer[i] = UInt64(110 - i) }      // 11...110, shuffled by reversal
        let s = CoherenceProbe.statistics(buffer, overhead: 10)
        #expect(s == SampleStatistics(min: 1, median: 50.5, p99: 99))
        for i in 0..<100 { buffer[i] = 5 }                     // below the overhead: 0, not negative
        #expect(CoherenceProbe.statistics(buffer, overhead: 10) == SampleStatistics(min: 0, median: 0, p99: 0))
    }

    @Test func testProbeMeasuresEveryStateAndOperationOnThisMachine() throws {
        let machine = try Topology.load()
        guard machine.cpus.count >= 2 else { return }  // one CPU: nothing to move a line between
        let pair = try machine.probePair(parsing: "\(machine.cpus[0].cpu),\(machine.cpus[1].cpu)")
        let (rows, overhead) = try CoherenceProbe.measure(owner: pair.owner, timer: pair.timer, distance: pair.distance,
                                                          matrix: CoherenceProbe.fullMatrix, reps: 300)
        #expect(overhead.minCycles > 0 && overhead.minCycles <= overhead.medianCycles)
        #expect(rows.count == 20)
        #expect(Set(rows.map { "\($0.state.rawValue) \($0.operation.rawValue)" }).count == 20)
        for m in rows {
            let numbers = [m.minNanoseconds, m.medianNanoseconds, m.p99Nanoseconds, m.minCycles, m.medianCycles]
            #expect(numbers.allSatisfy { $0.isFinite }, "\(m)")
            // A line another core owns costs something; a load of a line the timer shares (S) is a
            // hit in its own cache and may come out at the counter's floor, so only its median and
            // p99 must be positive.
            if m.state == .shared && m.operation == .load {
                #expect(m.minCycles >= 0 && m.p99Cycles > 0, "\(m)")
            } else {
                #expect(m.minCycles > 0, "\(m)")
            }
            #expect(m.minCycles <= m.medianCycles && m.medianCycles <= m.p99Cycles, "\(m)")
            #expect(m.overheadCycles == Double(overhead.minCycles))
            #expect(m.reps == 300 && m.cpuA == pair.owner && m.cpuB == pair.timer)
        }
    }

    @Test func testFilesRoundTripAndBadFilesAreOneLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("locklab-coherence-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let m = CoherenceMeasurement(state: .exclusive, operation: .fetchAdd, cpuA: 2, cpuB: 5, distance: .otherNode,
                                     reps: 10, minCycles: 200, medianCycles: 300, p99Cycles: 500, overheadCycles: 40,
                                     cyclesPerNanosecond: 2)
        try CoherenceFiles.write([m], to: dir)
        let back = try CoherenceFiles.read(path: dir + "/coherence.csv")
        #expect(back.count == 1)
        #expect(back[0].state == .exclusive && back[0].operation == .fetchAdd && back[0].distance == .otherNode)
        #expect(back[0].medianNanoseconds == 150 && back[0].minNanoseconds == 100 && back[0].p99Nanoseconds == 250)
        let text = try String(contentsOfFile: dir + "/coherence.csv", encoding: .utf8)
        #expect(text.hasPrefix("state,op,cpu_a,cpu_b,distance,reps,min_ns,median_ns,p99_ns,min_cycles,median_cycles"))
        let lines = try String(contentsOfFile: dir + "/handover_lines.csv", encoding: .utf8)
        #expect(lines.contains("\nmcs,2,1,") && lines.contains("\nck-fas,1,1,") && lines.contains("\nticket,1,1,"))

        try "state,op\nM,load\n".write(toFile: dir + "/bad.csv", atomically: true, encoding: .utf8)
        #expect(throws: LabError.self) { try CoherenceFiles.read(path: dir + "/bad.csv") }
        try (CoherenceFiles.header.joined(separator: ",") + "\nQ,load,0,1,smt,1,1,1,1,1,1,1,1\n")
            .write(toFile: dir + "/bad2.csv", atomically: true, encoding: .utf8)
        #expect(throws: LabError.self) { try CoherenceFiles.read(path: dir + "/bad2.csv") }
        #expect(throws: LabError.self) { try CoherenceFiles.read(path: dir + "/missing.csv") }
    }
}

/// A coherence.csv written by hand: store to M between cpus 0 and 1 is 100 ns one way and 120 ns
/// the other; between 2 and 3 (same-l3) 50 ns; a load row that must not be used.
private let handMadeCoherence = """
    state,op,cpu_a,cpu_b,distance,reps,min_ns,median_ns,p99_ns,min_cycles,median_cycles
    M,store,0,1,same-l3,100,90,100,150,180,200
    M,store,1,0,same-l3,100,100,120,170,200,240
    M,store,2,3,same-l3,100,40,50,60,80,100
    M,load,0,1,same-l3,100,5,7,9,10,14
    S,store,0,1,same-l3,100,5,7,9,10,14

    """

@Suite("Coherence probe: the handover ceiling")
struct HandoverCeilingTests {
    private func rows() throws -> [CoherenceMeasurement] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("locklab-ceiling-\(getpid()).csv").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try handMadeCoherence.write(toFile: path, atomically: true, encoding: .utf8)
        return try CoherenceFiles.read(path: path)
    }

    @Test func testCeilingArithmeticOnAHandMadeFile() throws {
        let rows = try rows()
        // The pair, either orientation: median of 100 and 120 = 110 ns.
        let mcs = try #require(HandoverCeiling.make(lock: "mcs", csLines: 1, csNanoseconds: 0, rows: rows,
                                                    cpus: (1, 0), distance: .sameL3))
        #expect(mcs.transferNanoseconds == 110)
        #expect(mcs.linesPerHandover == 2 + 1)                         // two queue nodes, the one cs line (the record's)
        #expect(abs(mcs.handoversPerSecond - 1e9 / 330) < 1e-6)
        let fas = try #require(HandoverCeiling.make(lock: "ck-fas", csLines: 3, csNanoseconds: 60, rows: rows,
                                                    cpus: (0, 1), distance: .sameL3))
        #expect(fas.linesPerHandover == 1 + 3)                         // the lock word, three cs lines (the record's first)
        #expect(abs(fas.handoversPerSecond - 1e9 / (4 * 110 + 60)) < 1e-6)
        let ticket = try #require(HandoverCeiling.make(lock: "ticket", csLines: 0, csNanoseconds: 0, rows: rows,
                                                       cpus: (0, 1), distance: nil))
        #expect(ticket.linesPerHandover == 2)
        #expect(abs(ticket.handoversPerSecond - 1e9 / 220) < 1e-6)
    }

    @Test func testCeilingFallsBackToTheClassAndRefusesWhatItCannotModel() throws {
        let rows = try rows()
        // Pair 4,5 is not in the file: the same-l3 median over its three store rows (50, 100, 120).
        let t = try #require(HandoverCeiling.transfer(in: rows, cpus: (4, 5), distance: .sameL3))
        #expect(t.nanoseconds == 100 && t.source == "same-l3 median")
        #expect(HandoverCeiling.transfer(in: rows, cpus: (4, 5), distance: .otherPackage) == nil)
        #expect(HandoverCeiling.make(lock: "pthread-mutex", csLines: 1, csNanoseconds: 0, rows: rows,
                                     cpus: (0, 1), distance: .sameL3) == nil)
        #expect(HandoverModel.linesPerHandover(lock: "nosuch", csLines: 1) == nil)
    }

    @Test func testEveryModelledLockIsRegistered() {
        for name in HandoverModel.lockLines.keys {
            #expect(LockRegistry.lookup(name) != nil, "\(name)")
        }
    }
}

@Suite("Coherence probe: command line", .serialized)
struct CoherenceCommandLineTests {
    @Test func testBadCPUListsAndOneCPUMachinesGetOneLineAndStatus2() throws {
        let bad: [([String], String)] = [
            (["coherence", "--cpus", "0"], "--cpus"),
            (["coherence", "--cpus", "0,0"], "--cpus"),
            (["coherence", "--cpus", "0,99999"], "--cpus"),
            (["coherence", "--cpus", "x,1"], "--cpus"),
            (["coherence", "--cpus", "0,1,2"], "--cpus"),
            (["coherence", "--cpus", "0,1", "--all-pairs"], "not both"),
            (["coherence", "--reps", "0"], "--reps"),
            (["coherence", "--reps", "nan"], "nan"),
            (["coherence", "--synthetic", everyClass], "loaded topology"),
            (["coherence", "--dry-run", "--synthetic", "pack:1 core:1 pu:1"], "needs two"),
            (["coherence", "--dry-run", "--cpus", "0,40", "--synthetic", everyClass], "--cpus"),
            (["run", "--lock", "mcs", "--coherence", "/nonexistent/coherence.csv", "--out", "/tmp/locklab-never"], "--coherence"),
        ]
        for (args, needle) in bad {
            let r = try locklab(args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1, "\(args): \(r.stderr)")
            #expect(r.stderr.contains(needle), "\(args): \(r.stderr)")
        }
    }

    @Test("under an affinity mask of one CPU: says how many are allowed of the machine's, not that it has one",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") && cshims_online_cpus() >= 2))
    func testRestrictedToOneCPUSaysSo() throws {
        let exe = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/locklab").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        process.arguments = ["-c", "0", exe, "coherence", "--dry-run"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 2, "\(text)")
        #expect(text.contains("may use 1 CPU (0 of 0-") && text.contains("affinity mask"), "\(text)")
        #expect(!text.contains("this machine has"), "\(text)")
    }

    @Test func testDryRunListsOnePairPerClass() throws {
        let r = try locklab(["coherence", "--dry-run", "--synthetic", everyClass])
        #expect(r.status == 0, "\(r.stderr)")
        for d in ["smt", "same-l3", "same-node", "other-node", "other-package"] { #expect(r.stdout.contains(d)) }
        #expect(r.stdout.contains("heat map: 987 more ordered pairs"))
    }

    @Test func testRunPrintsTheCeilingFromAHandMadeFile() throws {
        guard try Topology.load().cpus.count >= 2 else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("locklab-coh-run-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Compact placement puts two threads on the first two CPUs: give that pair 100 ns.
        let cpus = try Topology.load().cpus.map(\.cpu)
        let file = dir + "/hand.csv"
        try (CoherenceFiles.header.joined(separator: ",") + "\nM,store,\(cpus[0]),\(cpus[1]),same-l3,1,100,100,100,1,1,1,0\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let r = try locklab(["run", "--lock", "mcs,ck-fas,pthread-mutex", "--threads", "2", "--duration", "0.05",
                             "--warmup", "0", "--coherence", file, "--out", dir + "/run"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("handover ceiling at 2 threads"), "\(r.stdout)")
        // mcs: 3 lines (two nodes, the one cs line) x 100 ns = 3.333 M/s; ck-fas: 2 lines = 5 M/s;
        // pthread-mutex: no model.
        let mcs = r.stdout.split(separator: "\n").last { $0.hasPrefix("mcs ") }.map(String.init) ?? ""
        #expect(mcs.contains(" 3 ") && mcs.contains("3.333"), "\(mcs)")
        let fas = r.stdout.split(separator: "\n").last { $0.hasPrefix("ck-fas ") }.map(String.init) ?? ""
        #expect(fas.contains(" 2 ") && fas.contains("5.000"), "\(fas)")
    }
}
