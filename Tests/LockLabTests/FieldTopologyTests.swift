// Issue 10, sections 1 and 2: the CPUs the process was given (affinity mask) and CPUs that belong to
// no NUMA node (memory-less nodes). Each case from the field and its siblings.

import Foundation
import Testing
@testable import LockLab

/// The field report's memoryless-node.xml (Tests/Fixtures): package 0 has CPUs but no NUMA node.
private let memorylessXML = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/memoryless-node.xml").path

/// An hwloc XML machine of `packages` packages of `cores` single-PU cores, with a NUMA node (memory)
/// only on the packages in `memoryOn`; written to a temporary file whose path is returned.
func memorylessMachineXML(packages: Int, cores: Int, memoryOn: Set<Int>, name: String) throws -> String {
    func mask<S: Sequence>(_ bits: S) -> String where S.Element == Int {
        var words = [UInt32](repeating: 0, count: max(1, (packages * cores + 31) / 32))
        for b in bits { words[b / 32] |= 1 << UInt32(b % 32) }
        // hwloc's bitmap text: the highest 32-bit word first, comma-separated.
        return words.reversed().map { "0x" + String(format: "%08x", $0) }.joined(separator: ",")
    }
    let all = 0..<(packages * cores)
    let nodes = mask(memoryOn)
    var xml = """
        <?xml version="1.0" encoding="UTF-8"?>
        <!DOCTYPE topology SYSTEM "hwloc2.dtd">
        <topology version="2.0">
        <object type="Machine" os_index="0" cpuset="\(mask(all))" complete_cpuset="\(mask(all))" allowed_cpuset="\(mask(all))" nodeset="\(nodes)" complete_nodeset="\(nodes)" allowed_nodeset="\(nodes)">

        """
    for p in 0..<packages {
        let cpus = (p * cores)..<((p + 1) * cores)
        let ns = mask([p])
        xml += "<object type=\"Package\" os_index=\"\(p)\" cpuset=\"\(mask(cpus))\" complete_cpuset=\"\(mask(cpus))\" nodeset=\"\(ns)\" complete_nodeset=\"\(ns)\">\n"
        if memoryOn.contains(p) {
            xml += "<object type=\"NUMANode\" os_index=\"\(p)\" cpuset=\"\(mask(cpus))\" complete_cpuset=\"\(mask(cpus))\" nodeset=\"\(ns)\" complete_nodeset=\"\(ns)\" local_memory=\"1073741824\"/>\n"
        }
        for c in cpus {
            xml += "<object type=\"Core\" os_index=\"\(c)\" cpuset=\"\(mask([c]))\" complete_cpuset=\"\(mask([c]))\" nodeset=\"\(ns)\" complete_nodeset=\"\(ns)\">"
            xml += "<object type=\"PU\" os_index=\"\(c)\" cpuset=\"\(mask([c]))\" complete_cpuset=\"\(mask([c]))\" nodeset=\"\(ns)\" complete_nodeset=\"\(ns)\"/></object>\n"
        }
        xml += "</object>\n"
    }
    xml += "</object>\n</topology>\n"
    let dir = temporaryDirectory("xml-\(name)")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let path = dir + "/machine.xml"
    try xml.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

@Suite("Field: CPUs in no NUMA node")
struct MemorylessNodeTests {
    @Test func testMemorylessPackageIsAPseudoNodeNotNodeZero() throws {
        let machine = try Topology.load(.xml(memorylessXML))
        #expect(machine.nodeCount == 2)
        #expect(machine.realNodeCount == 1)
        #expect(machine.pseudoNodes == [0])
        for cpu in machine.cpus {
            if cpu.package == 0 {
                #expect(cpu.node == 0 && cpu.realNode == -1, "\(cpu)")
            } else {
                #expect(cpu.node == 1 && cpu.realNode == 1, "\(cpu)")
            }
        }
        #expect(machine.summary.hasPrefix("2 packages, 2 nodes (1 pseudo-node: a package in no NUMA node), 8 cores, 16 PUs"))
        let text = machine.describe()
        #expect(text.contains("node 0 (no NUMA node: package 0 as a pseudo-node)"))
        #expect(text.contains("node 1 (os index 1)"))
    }

    @Test func testScatterSpreadsOverTheMemorylessPackageAndTheOther() throws {
        let machine = try Topology.load(.xml(memorylessXML))
        let plan = try machine.plan(threads: 4, placement: .scatter)
        #expect(plan.threads.map(\.package) == [0, 1, 0, 1])
        #expect(plan.nodesUsed == 2)
        #expect(plan.threads.map(\.realNode) == [-1, 1, -1, 1])
        // compact fills the pseudo-node's cores first, then the real node's.
        let compact = try machine.plan(threads: 5, placement: .compact)
        #expect(compact.threads.map(\.node) == [0, 0, 0, 0, 1])
    }

    @Test func testTwoMemorylessPackagesStayTwoDomains() throws {
        // Sibling: package 1 holds all the memory; packages 0 and 2 have none. They must not merge
        // into one "no node" bucket (nor into node 0, nor into package 1's node).
        let path = try memorylessMachineXML(packages: 3, cores: 2, memoryOn: [1], name: "three")
        let machine = try Topology.load(.xml(path))
        #expect(machine.nodeCount == 3)
        #expect(machine.pseudoNodes == [0, 2])
        #expect(machine.cpus.map(\.node) == [0, 0, 1, 1, 2, 2])
        #expect(machine.cpus.map(\.realNode) == [-1, -1, 1, 1, -1, -1])
        #expect(machine.summary.contains("3 nodes (2 pseudo-nodes: packages in no NUMA node)"))
        let plan = try machine.plan(threads: 3, placement: .scatter)
        #expect(Set(plan.threads.map(\.package)) == [0, 1, 2])
    }

    @Test func testVirtualNodesOverAMemorylessPackageSayNoRealNode() throws {
        // Sibling: the virtual-node split derives nodes from cores; the real node stays "none".
        let machine = try Topology.load(.xml(memorylessXML), virtualNodes: 4)
        #expect(machine.nodeCount == 4)
        #expect(machine.realNodeCount == 1)
        #expect(machine.cpus.filter { $0.package == 0 }.allSatisfy { $0.realNode == -1 })
        #expect(machine.describe().contains("virtual node 0 (real node none)"))
        #expect(machine.describe().contains("virtual node 2 (real node 1)"))
    }

    @Test func testLocksGetAPseudoNodeAsTheirThreadNode() throws {
        // Every place that gives a lock a node takes it from the plan (ThreadPlacement.node), never
        // from the cpu number: a plan over the memory-less machine hands NUMA-aware locks node ids
        // below nodeCount, with the memory-less package's threads on their own node.
        let machine = try Topology.load(.xml(memorylessXML))
        let plan = try machine.plan(threads: 16, placement: .scatter)
        #expect(plan.threads.allSatisfy { $0.node >= 0 && $0.node < machine.nodeCount })
        #expect(Dictionary(grouping: plan.threads, by: \.node).mapValues(\.count) == [0: 8, 1: 8])
    }

    @Test func testCommandLineFlagsTheMemorylessPackage() throws {
        let topology = try locklab(["topology", "--xml", memorylessXML])
        #expect(topology.status == 0)
        #expect(topology.stdout.contains("pseudo-node"))
        #expect(!topology.stdout.contains("1 node,"))
        let plan = try locklab(["plan", "--threads", "4", "--placement", "scatter", "--xml", memorylessXML, "--csv"])
        #expect(plan.status == 0)
        let packages = plan.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: ",").last.map(String.init) ?? "" }
        #expect(packages == ["0", "1", "0", "1"], "\(plan.stdout)")
    }
}

@Suite("Field: the process's CPU affinity mask")
struct AffinityMaskTests {
    private let twoSockets = "pack:2 numa:1 core:2 pu:2"

    @Test func testAffinityKeepsOnlyTheGivenCPUsAndSaysSo() throws {
        // cpus of "pack:2 numa:1 core:2 pu:2": core 0 = 0,1; core 1 = 2,3; core 2 = 4,5; core 3 = 6,7.
        let machine = try Topology.load(.synthetic(twoSockets), affinity: [1, 2, 3, 6])
        #expect(machine.cpus.map(\.cpu) == [1, 2, 3, 6])
        // cpu 1 is the only usable PU of its core: it is that core's first (smt 0).
        #expect(machine.info(cpu: 1)?.smt == 0)
        #expect(machine.info(cpu: 3)?.smt == 1)
        #expect(machine.coreCount == 3)
        #expect(machine.nodeCount == 2)
        #expect(machine.restriction?.by == .affinityMask)
        #expect(machine.summary.contains("restricted to cpus 1-3,6 of 0-7 by the affinity mask"))
        #expect(machine.describe().contains("restricted view"))
    }

    @Test func testPlacementsUseOnlyTheMaskAndRefuseCPUsOutsideIt() throws {
        let machine = try Topology.load(.synthetic(twoSockets), affinity: [1, 6])
        let compact = try machine.plan(threads: 2, placement: .compact)
        #expect(compact.threads.map(\.cpu) == [1, 6])
        let scatter = try machine.plan(threads: 3, placement: .scatter)
        #expect(Set(scatter.threads.map(\.cpu)).isSubset(of: [1, 6]))
        #expect(scatter.oversubscribed)
        #expect(throws: LabError.self) { try machine.plan(threads: 1, placement: .cpus([0])) }
        do {
            _ = try machine.plan(threads: 1, placement: .cpus([6, 0]))
        } catch let e as LabError {
            #expect(e.description.contains("cpu 0 is outside this process's CPU affinity mask"))
            #expect(!e.description.contains("\n"))
        }
        // A cpu the machine does not have at all keeps its own message.
        do {
            _ = try machine.plan(threads: 1, placement: .cpus([99]))
        } catch let e as LabError {
            #expect(e.description.contains("cpu 99 is not in"))
        }
    }

    @Test func testVirtualNodesSplitOnlyTheAllowedCores() throws {
        let machine = try Topology.load(.synthetic(twoSockets), virtualNodes: 2, affinity: [0, 2, 4, 6])
        #expect(machine.coreCount == 4)
        #expect(machine.nodeCount == 2)
        #expect(machine.restriction != nil)
        #expect(throws: LabError.self) { try Topology.load(.synthetic(twoSockets), virtualNodes: 3, affinity: [0, 2]) }
    }

    @Test func testAnAffinityWithNoCPUOfTheMachineIsOneLine() throws {
        do {
            _ = try Topology.load(.synthetic(twoSockets), affinity: [99])
            Issue.record("an affinity outside the machine was accepted")
        } catch let e as LabError {
            #expect(!e.description.contains("\n"))
            #expect(e.description.contains("99"))
        }
    }

    @Test func testUnrestrictedThisMachineSaysNothing() throws {
        // The test process is not bound (CI runs it so): no restriction, summary unchanged.
        let machine = try Topology.load()
        if machine.restriction?.by != .affinityMask {
            #expect(!machine.summary.contains("restricted"))
        }
    }

    /// `taskset -c LAST locklab ...`: the field case, on this machine's last CPU.
    private func lastCPUOrSkip() throws -> Int? {
        let machine = try Topology.load()
        guard machine.cpus.count >= 2, FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset") else { return nil }
        return machine.cpus.last!.cpu
    }

    private func taskset(_ cpu: Int, _ arguments: [String]) throws -> CommandResult {
        let exe = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/locklab").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
        process.arguments = ["-c", "\(cpu)", exe] + arguments
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

    @Test func testTasksetRunPinsOnlyToTheGivenCPU() throws {
        guard let cpu = try lastCPUOrSkip() else { return }
        let dir = temporaryDirectory("taskset-run")
        let result = try taskset(cpu, ["run", "--lock", "tas", "--threads", "1,2", "--duration", "0.05",
                                       "--warmup", "0.01", "--out", dir])
        #expect(result.status == 0, "\(result.stderr)")
        let threads = try String(contentsOfFile: dir + "/threads.csv", encoding: .utf8).split(separator: "\n")
        let header = threads[0].split(separator: ",").map(String.init)
        let cpuColumn = try #require(header.firstIndex(of: "cpu"))
        let lastColumn = try #require(header.firstIndex(of: "last_cpu"))
        #expect(threads.count == 4)
        for row in threads.dropFirst() {
            let cells = row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            #expect(cells[cpuColumn] == "\(cpu)" && cells[lastColumn] == "\(cpu)", "\(row)")
        }
        let manifest = try String(contentsOfFile: dir + "/manifest.json", encoding: .utf8)
        #expect(manifest.contains("restricted to cpus \(cpu) of"))
        #expect(result.stdout.contains("restricted to cpus \(cpu)"))
    }

    @Test func testTasksetTopologyAndPlanSayRestrictedAndRefuseOutside() throws {
        guard let cpu = try lastCPUOrSkip() else { return }
        let topology = try taskset(cpu, ["topology"])
        #expect(topology.status == 0)
        #expect(topology.stdout.contains("restricted view: this process may run on cpus \(cpu) only"))
        let other = try Topology.load().cpus.first!.cpu
        let plan = try taskset(cpu, ["run", "--lock", "tas", "--threads", "1", "--placement", "cpus:\(other)",
                                     "--out", "/tmp/locklab-never"])
        #expect(plan.status == 2)
        #expect(plan.stderr.split(separator: "\n").count == 1, "\(plan.stderr)")
        #expect(plan.stderr.contains("outside this process's CPU affinity mask"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/locklab-never"))
    }
}
