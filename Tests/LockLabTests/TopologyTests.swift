// Topology discovery through hwloc, virtual nodes and thread placement.

import Foundation
import Testing
@testable import LockLab

/// 4 sockets, one NUMA node and one L3 each, 8 cores of 2 PUs: 32 cores, 64 PUs.
private let fourSockets = "pack:4 numa:1 l3:1 core:8 pu:2"
/// 2 sockets of 4 cores whose SMT siblings are numbered like Linux on x86: cpu i and i+8.
private let linuxNumbered = "pack:2 numa:1 core:4 pu:2(indexes=0,8,1,9,2,10,3,11,4,12,5,13,6,14,7,15)"

/// The XML fixture from `lstopo -i "pack:2 numa:1 l3:1 core:4 pu:2" --of xml`, in Tests/Fixtures
/// (outside the target's directory, so SwiftPM neither copies it nor warns about it).
private let twoSocketXML = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/two-socket.xml").path

@Suite("Topology")
struct TopologyTests {
    // MARK: discovery

    @Test func testThisMachineLoadsWithAtLeastOneCPU() throws {
        let machine = try Topology.load()
        #expect(machine.cpus.count >= 1)
        #expect(machine.isThisSystem)
        #expect(machine.virtualNodes == nil)
        #expect(machine.nodeCount >= 1 && machine.packageCount >= 1 && machine.coreCount >= 1)
        #expect(machine.cpus.map(\.cpu) == machine.cpus.map(\.cpu).sorted())
        #expect(machine.summary.hasSuffix("(this machine)"))
    }

    @Test func testSyntheticFourSocketCounts() throws {
        let machine = try Topology.load(.synthetic(fourSockets))
        #expect(!machine.isThisSystem)
        #expect(machine.packageCount == 4)
        #expect(machine.nodeCount == 4)
        #expect(machine.l3Count == 4)
        #expect(machine.coreCount == 32)
        #expect(machine.cpus.count == 64)
        #expect(machine.cpus.map(\.cpu) == Array(0..<64))
        // Every core has PUs with smt 0 and 1, all on one node and package.
        for core in 0..<32 {
            let pus = machine.cpus.filter { $0.core == core }
            #expect(pus.map(\.smt).sorted() == [0, 1])
            #expect(Set(pus.map(\.node)).count == 1 && Set(pus.map(\.package)).count == 1)
        }
        #expect(machine.summary == "4 packages, 4 nodes, 32 cores, 64 PUs (synthetic '\(fourSockets)')")
    }

    @Test func testSyntheticWithoutNUMAOrL3GetsNodeZeroAndL3AsPackage() throws {
        let machine = try Topology.load(.synthetic("pack:2 core:2 pu:1"))
        #expect(machine.nodeCount == 1)
        #expect(machine.cpus.allSatisfy { $0.node == 0 && $0.realNode == 0 })
        #expect(!machine.hasL3Info)
        #expect(machine.cpus.allSatisfy { $0.l3 == $0.package })
    }

    @Test func testPUsWithoutCoresAreTheirOwnCores() throws {
        let machine = try Topology.load(.synthetic("pack:2 pu:2"))
        #expect(machine.coreCount == 4)
        #expect(machine.cpus.allSatisfy { $0.smt == 0 })
    }

    @Test func testSMTRankFollowsCoreNotOSNumbering() throws {
        let machine = try Topology.load(.synthetic(linuxNumbered))
        #expect(machine.info(cpu: 0)?.core == machine.info(cpu: 8)?.core)
        #expect(machine.info(cpu: 8)?.smt == 1)
        #expect(machine.info(cpu: 3)?.smt == 0)
        #expect(machine.info(cpu: 4)?.package == 1)
    }

    @Test func testXMLFixtureLoads() throws {
        let machine = try Topology.load(.xml(twoSocketXML))
        #expect(!machine.isThisSystem)
        #expect(machine.packageCount == 2)
        #expect(machine.nodeCount == 2)
        #expect(machine.coreCount == 8)
        #expect(machine.cpus.count == 16)
        #expect(machine.cpus.filter { $0.node == 1 }.map(\.realNode).allSatisfy { $0 == 1 })
        #expect(machine.summary.hasSuffix("(xml two-socket.xml)"))
    }

    @Test func testDescribeShowsTheTree() throws {
        let text = try Topology.load(.xml(twoSocketXML)).describe()
        #expect(text.contains("package 1"))
        #expect(text.contains("  node 1 (os index 1)"))
        #expect(text.contains("      core 0: cpus 0,1"))
    }

    // MARK: virtual nodes

    @Test func testTwoVirtualNodesOnThisMachineCoverEveryCPU() throws {
        let real = try Topology.load()
        // A 1-core machine cannot be split in two; nothing to check there.
        guard real.coreCount >= 2 else { return }
        let machine = try Topology.load(virtualNodes: 2)
        #expect(machine.virtualNodes == 2)
        #expect(machine.nodeCount == 2)
        #expect(machine.cpus.map(\.cpu) == real.cpus.map(\.cpu))
        #expect(Set(machine.cpus.map(\.node)) == [0, 1])
        #expect(machine.summary.contains("2 virtual nodes"))
    }

    @Test func testVirtualNodesAreContiguousEqualAndKeepSiblings() throws {
        // 32 cores into 3 nodes: 11, 11, 10 cores.
        let machine = try Topology.load(.synthetic(fourSockets), virtualNodes: 3)
        #expect(machine.nodeCount == 3)
        let coresPerNode = (0..<3).map { node in Set(machine.cpus.filter { $0.node == node }.map(\.core)) }
        #expect(coresPerNode.map(\.count) == [11, 11, 10])
        #expect(coresPerNode[0] == Set(0..<11) && coresPerNode[1] == Set(11..<22) && coresPerNode[2] == Set(22..<32))
        for core in 0..<32 {
            #expect(Set(machine.cpus.filter { $0.core == core }.map(\.node)).count == 1)
        }
        // Real nodes are kept for memory placement.
        #expect(machine.realNodeCount == 4)
    }

    @Test(arguments: [0, -1, 33])
    func testVirtualNodesOutsideOneToCoresThrow(count: Int) {
        #expect(throws: LabError.self) { try Topology.load(.synthetic(fourSockets), virtualNodes: count) }
    }

    @Test func testTooManyVirtualNodesOnThisMachineThrows() throws {
        let cores = try Topology.load().coreCount
        #expect(throws: LabError.self) { try Topology.load(virtualNodes: cores + 1) }
    }

    // MARK: bad sources

    @Test(arguments: ["garbage:3", "pack:2 core:2", "pack:0 pu:1", ""])
    func testMalformedSyntheticThrows(text: String) {
        #expect(throws: LabError.self) { try Topology.load(.synthetic(text)) }
    }

    @Test func testMissingOrInvalidXMLThrows() throws {
        #expect(throws: LabError.self) { try Topology.load(.xml("/nonexistent/two-socket.xml")) }
        let notXML = FileManager.default.temporaryDirectory.appendingPathComponent("locklab-not-xml-\(getpid()).xml")
        try Data("not a topology\n".utf8).write(to: notXML)
        defer { try? FileManager.default.removeItem(at: notXML) }
        #expect(throws: LabError.self) { try Topology.load(.xml(notXML.path)) }
    }

    // MARK: placement parsing

    @Test(arguments: ["compact", "scatter", "cpus:0,2,4", "cpus:7", "os"])
    func testPlacementRoundTrips(text: String) throws {
        let placement = try Placement(parsing: text)
        #expect(placement.description == text)
        #expect(try Placement(parsing: placement.description) == placement)
    }

    @Test func testPlacementRangesExpand() throws {
        #expect(try Placement(parsing: "cpus:0-3,8") == .cpus([0, 1, 2, 3, 8]))
    }

    @Test(arguments: ["", "Compact", "spread", "cpus:", "cpus:a", "cpus:1,,2", "cpus:-1", "cpus:3-1", "cpus 0,1"])
    func testMalformedPlacementThrows(text: String) {
        #expect(throws: LabError.self) { try Placement(parsing: text) }
    }

    // MARK: plans

    @Test func testCompactEightThreadsStayOnNodeZeroOnDistinctCores() throws {
        let plan = try Topology.load(.synthetic(fourSockets)).plan(threads: 8, placement: .compact)
        #expect(plan.threads.map(\.thread) == Array(0..<8))
        #expect(plan.threads.allSatisfy { $0.node == 0 && $0.package == 0 })
        #expect(Set(plan.threads.map(\.core)).count == 8)
        #expect(plan.nodesUsed == 1)
        #expect(!plan.oversubscribed)
        #expect(plan.note == nil)
    }

    @Test func testCompactFillsEveryCoreBeforeSMTSiblings() throws {
        let machine = try Topology.load(.synthetic(fourSockets))
        let plan = try machine.plan(threads: 33, placement: .compact)
        #expect(Set(plan.threads.prefix(32).map(\.core)).count == 32)
        #expect(plan.threads.prefix(32).allSatisfy { machine.info(cpu: $0.cpu!)?.smt == 0 })
        let last = plan.threads[32]
        #expect(machine.info(cpu: last.cpu!)?.smt == 1)
        #expect(last.core == 0 && last.node == 0)
        #expect(!plan.oversubscribed)
        #expect(plan.note?.contains("SMT") == true)
    }

    @Test func testCompactWithLinuxNumberingUsesFirstSiblingsFirst() throws {
        let plan = try Topology.load(.synthetic(linuxNumbered)).plan(threads: 10, placement: .compact)
        #expect(plan.threads.map(\.cpu) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    }

    @Test func testScatterFourThreadsHitsFourNodes() throws {
        let plan = try Topology.load(.synthetic(fourSockets)).plan(threads: 4, placement: .scatter)
        #expect(plan.threads.map(\.node) == [0, 1, 2, 3])
        #expect(plan.nodesUsed == 4)
        #expect(plan.threads.map(\.cpu) == [0, 16, 32, 48])
    }

    @Test func testScatterTakesCoresInOrderAndSiblingsLast() throws {
        let machine = try Topology.load(.synthetic(fourSockets))
        let plan = try machine.plan(threads: 64, placement: .scatter)
        #expect(plan.threads.enumerated().allSatisfy { $0.element.node == $0.offset % 4 })
        #expect(plan.threads.prefix(32).allSatisfy { machine.info(cpu: $0.cpu!)?.smt == 0 })
        #expect(plan.threads[4].core == 1)
        #expect(Set(plan.threads.map(\.cpu)).count == 64)
    }

    @Test func testScatterOverUnequalVirtualNodesUsesEveryCPUOnce() throws {
        let machine = try Topology.load(.synthetic(fourSockets), virtualNodes: 3)
        let plan = try machine.plan(threads: 64, placement: .scatter)
        #expect(Set(plan.threads.map(\.cpu)).count == 64)
        #expect(plan.threads.prefix(3).map(\.node) == [0, 1, 2])
    }

    @Test func testCPUListPlacementUsesExactlyThoseCPUs() throws {
        let machine = try Topology.load(.synthetic(fourSockets))
        let plan = try machine.plan(threads: 2, placement: .cpus([0, 2]))
        #expect(plan.threads.map(\.cpu) == [0, 2])
        #expect(plan.threads.map(\.core) == [0, 1])
        #expect(!plan.oversubscribed)
        // On this machine too, when it has two cpus 0 and 2… it need not; use what it has.
        let here = try Topology.load()
        let first = here.cpus[0].cpu
        #expect(try here.plan(threads: 1, placement: .cpus([first])).threads[0].cpu == first)
    }

    @Test func testUnknownCPUInListThrowsNamingIt() throws {
        let machine = try Topology.load(.synthetic(fourSockets))
        do {
            _ = try machine.plan(threads: 2, placement: .cpus([0, 64]))
            Issue.record("cpu 64 was accepted")
        } catch let error as LabError {
            #expect(error.description.contains("cpu 64"))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test func testThreeTimesTheCPUsWrapsRoundAndIsOversubscribed() throws {
        let machine = try Topology.load()
        let n = machine.cpus.count
        let plan = try machine.plan(threads: 3 * n, placement: .compact)
        #expect(plan.threads.count == 3 * n)
        #expect(plan.oversubscribed)
        #expect(plan.note?.contains("oversubscribed 3x") == true)
        for t in plan.threads { #expect(t.cpu == plan.threads[t.thread % n].cpu) }
    }

    @Test func testRepeatedCPUInListIsOversubscribed() throws {
        let plan = try Topology.load(.synthetic(fourSockets)).plan(threads: 2, placement: .cpus([5, 5]))
        #expect(plan.oversubscribed)
    }

    @Test(arguments: [0, -3])
    func testFewerThanOneThreadThrows(threads: Int) throws {
        let machine = try Topology.load(.synthetic(fourSockets))
        #expect(throws: LabError.self) { try machine.plan(threads: threads, placement: .compact) }
    }
}
