// Machine topology from hwloc: which OS cpu sits on which core, L3 group, NUMA node and package.
//
// Discovery goes through hwloc (never /sys by hand), so the same code reads this machine, an hwloc
// synthetic description ("pack:4 numa:1 l3:1 core:8 pu:2") or an XML file from `lstopo --of xml`.
// Only a topology of this machine may be used to bind threads; the others are for planning.
//
// Invariants of a loaded `Topology`:
// - `cpus` is sorted by OS cpu index and holds each PU hwloc reports (allowed PUs only) once.
// - `core` is dense (0..<coreCount) in hwloc's logical core order, which groups cores by package
//   and L3; `smt` is dense per core (0 for the first PU of each core).
// - `node` is dense (0..<nodeCount): the locality domains that have cpus, in the order of their
//   first PU in hwloc's logical order, or the virtual nodes; `realNode` keeps hwloc's OS index of
//   the NUMA node, or -1 for a cpu in no NUMA node. All PUs of a core share a node.
// - On this machine, `cpus` holds only the PUs the process may run on: hwloc drops those a cpuset
//   cgroup disallows, and discovery drops those outside the process's CPU affinity mask (taskset,
//   numactl --physcpubind, a batch scheduler's or container runtime's binding). `restriction` says
//   which of the two narrowed the view, so that `topology`, plans and manifests say so.
//
// hwloc 2.x attaches NUMA nodes as memory children beside the normal tree, so a PU's node is found
// by testing the PU's OS index against each NUMA node's cpuset rather than by walking up parents.
//
// CPUs in no NUMA node. hwloc 2.x reports no NUMA node for CPUs whose node has no memory (a
// memory-less node: some real machines, and CXL/HBM set-ups that move all memory elsewhere). Such
// CPUs get a locality domain of their own: their package, as a pseudo-node (`realNode` -1). Not the
// nearest memory node by distance: a lock's locality is about which CPUs share a last-level cache
// and an interconnect hop, and a memory-less package's CPUs share those with each other, not with
// the package whose memory is nearest. Merging them into that node would count cross-socket
// handovers as same-node ones and let scatter put every thread on one package. Memory for them
// still comes from the kernel's nearest node (first touch); `--mem-node` takes real nodes only.

import CHwloc
import Foundation

/// Where a topology comes from.
public enum TopologySource: Sendable, Equatable {
    /// The machine this process runs on.
    case thisMachine
    /// An hwloc synthetic description, e.g. "pack:2 numa:1 l3:1 core:4 pu:2".
    case synthetic(String)
    /// The path of an hwloc XML topology (`lstopo --of xml`).
    case xml(String)
}

/// One processing unit (hardware thread) and where it sits.
public struct CPUInfo: Sendable, Equatable {
    /// OS index of the cpu: what `sched_setaffinity` and `taskset` take.
    public let cpu: Int
    /// Global core index, dense, in hwloc logical order.
    public let core: Int
    /// Index of this PU among its core's PUs (0 = first hardware thread of the core).
    public let smt: Int
    /// The NUMA node as the run sees it: dense, and virtual when `--virtual-nodes` is set.
    public let node: Int
    /// hwloc's OS index of the real NUMA node; -1 when the cpu is in no NUMA node (a memory-less
    /// node: `node` is then its package's pseudo-node, see the file's header).
    public let realNode: Int
    /// Package (socket) index.
    public let package: Int
    /// L3 group index; equal to `package` when the topology has no L3 information.
    public let l3: Int

    public init(cpu: Int, core: Int, smt: Int, node: Int, realNode: Int, package: Int, l3: Int) {
        self.cpu = cpu
        self.core = core
        self.smt = smt
        self.node = node
        self.realNode = realNode
        self.package = package
        self.l3 = l3
    }
}

/// A machine as a list of cpus with their core, node, L3 group and package.
public struct Topology: Sendable {
    /// Every cpu, sorted by OS cpu index.
    public let cpus: [CPUInfo]
    public let source: TopologySource
    /// False for synthetic and XML topologies: plan from them, never bind.
    public let isThisSystem: Bool
    /// Set when `--virtual-nodes` split the cores into this many nodes.
    public let virtualNodes: Int?
    /// hwloc's CPU model string of the first package, when it reports one.
    public let cpuModel: String?
    /// False when hwloc reported no L3 caches, so `l3` repeats the package.
    public let hasL3Info: Bool
    /// Set when the process may use fewer CPUs than the machine has: what narrowed the view.
    public let restriction: CPURestriction?

    /// Builds a topology from cpus directly (tests, or machines described by other means).
    /// `cpus` need not be sorted.
    public init(cpus: [CPUInfo], source: TopologySource, isThisSystem: Bool, virtualNodes: Int? = nil,
                cpuModel: String? = nil, hasL3Info: Bool = true, restriction: CPURestriction? = nil) {
        self.cpus = cpus.sorted { $0.cpu < $1.cpu }
        self.source = source
        self.isThisSystem = isThisSystem
        self.virtualNodes = virtualNodes
        self.cpuModel = cpuModel
        self.hasL3Info = hasL3Info
        self.restriction = restriction
    }

    public var nodeCount: Int { Set(cpus.map(\.node)).count }
    /// Real NUMA nodes that hold one of the cpus (pseudo-nodes of memory-less packages not counted).
    public var realNodeCount: Int { Set(cpus.map(\.realNode).filter { $0 >= 0 }).count }
    /// Nodes (as the run sees them) made of cpus that are in no NUMA node: package pseudo-nodes.
    public var pseudoNodes: [Int] {
        guard virtualNodes == nil else { return [] }
        return Set(cpus.filter { $0.realNode < 0 }.map(\.node)).sorted()
    }
    public var packageCount: Int { Set(cpus.map(\.package)).count }
    public var coreCount: Int { Set(cpus.map(\.core)).count }
    public var l3Count: Int { Set(cpus.map(\.l3)).count }

    /// One line for the CSV `machine` column and the manifest, e.g.
    /// "1 package, 1 node, 2 cores, 2 PUs (this machine)". It contains commas: quote it in CSV.
    public var summary: String {
        var nodes = TopologyText.plural(nodeCount, "node")
        if !pseudoNodes.isEmpty {
            let n = pseudoNodes.count
            nodes += n == 1 ? " (1 pseudo-node: a package in no NUMA node)" : " (\(n) pseudo-nodes: packages in no NUMA node)"
        }
        if let virtualNodes {
            nodes = "\(TopologyText.plural(virtualNodes, "virtual node")) (\(TopologyText.plural(realNodeCount, "real node")))"
        }
        var parts = [TopologyText.plural(packageCount, "package"), nodes]
        if hasL3Info, l3Count != packageCount { parts.append(TopologyText.plural(l3Count, "L3 group")) }
        parts.append(TopologyText.plural(coreCount, "core"))
        parts.append(TopologyText.plural(cpus.count, "PU"))
        var text = parts.joined(separator: ", ") + " (\(sourceDescription)"
        // Only the affinity mask changes the summary (and so what a results folder accepts): a
        // cgroup's or offline cpus are invisible to hwloc's view already, and `describe` says so.
        if let restriction, restriction.by == .affinityMask { text += "; \(restriction.summary)" }
        return text + ")"
    }

    /// Where the topology came from, in words: "this machine", "synthetic 'pack:2 …'", "xml FILE".
    public var sourceDescription: String {
        switch source {
        case .thisMachine: return isThisSystem ? "this machine" : "this machine, as hwloc was told to see it"
        case let .synthetic(text): return "synthetic '\(text)'"
        case let .xml(path): return "xml \((path as NSString).lastPathComponent)"
        }
    }

    /// The cpu with OS index `cpu`, if the topology has it.
    public func info(cpu: Int) -> CPUInfo? {
        // `cpus` is sorted, but OS indices may have gaps (offline or disallowed cpus): search.
        var low = 0, high = cpus.count
        while low < high {
            let mid = (low + high) / 2
            if cpus[mid].cpu < cpu { low = mid + 1 } else { high = mid }
        }
        return low < cpus.count && cpus[low].cpu == cpu ? cpus[low] : nil
    }

    /// The text `locklab topology` prints: the summary, then a tree package > node > L3 > core > PUs.
    public func describe() -> String {
        var lines: [String] = []
        lines.append(summary)
        if let cpuModel { lines.append("cpu model: \(cpuModel)") }
        if !isThisSystem { lines.append("not this machine: placements can be planned but not bound") }
        if let restriction { lines.append(restriction.explanation) }
        if !pseudoNodes.isEmpty {
            lines.append("CPUs in no NUMA node (a memory-less node): each such package is a pseudo-node of its own, "
                + "for placement and handover locality; their memory comes from the nearest node")
        }
        if let virtualNodes {
            lines.append("virtual nodes: the \(TopologyText.plural(coreCount, "core")) split into \(virtualNodes) contiguous groups")
        }
        for package in Set(cpus.map(\.package)).sorted() {
            lines.append("package \(package)")
            let inPackage = cpus.filter { $0.package == package }
            for node in Set(inPackage.map(\.node)).sorted() {
                let inNode = inPackage.filter { $0.node == node }
                let realNodes = Set(inNode.map(\.realNode)).sorted().map { $0 < 0 ? "none" : String($0) }
                    .joined(separator: ",")
                if virtualNodes != nil {
                    lines.append("  virtual node \(node) (real node \(realNodes))")
                } else if inNode.allSatisfy({ $0.realNode < 0 }) {
                    lines.append("  node \(node) (no NUMA node: package \(package) as a pseudo-node)")
                } else {
                    lines.append("  node \(node) (os index \(realNodes))")
                }
                for l3 in Set(inNode.map(\.l3)).sorted() {
                    let inL3 = inNode.filter { $0.l3 == l3 }
                    lines.append(hasL3Info ? "    L3 \(l3)" : "    L3 \(l3) (no L3 info: the package)")
                    for core in Set(inL3.map(\.core)).sorted() {
                        let pus = inL3.filter { $0.core == core }.sorted { $0.smt < $1.smt }.map(\.cpu)
                        let label = pus.count == 1 ? "cpu" : "cpus"
                        lines.append("      core \(core): \(label) \(pus.map(String.init).joined(separator: ","))")
                    }
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Loads a topology with hwloc and, if asked, splits its cores into `virtualNodes` nodes.
    /// This machine is seen through the process's CPU affinity mask (see `restriction`).
    /// `affinity` replaces that mask, for tests and for planning another machine as if bound:
    /// only those OS cpus are kept, and the topology says it was restricted.
    /// Throws a `LabError` with one line for a malformed synthetic string, an unreadable XML file,
    /// a virtual-node count outside 1...cores, or an affinity that leaves no cpu.
    public static func load(_ source: TopologySource = .thisMachine, virtualNodes: Int? = nil,
                            affinity: [Int]? = nil) throws -> Topology {
        let discovered = try HwlocDiscovery.discover(source, affinity: affinity)
        guard let virtualNodes else { return discovered }
        return try discovered.splitIntoVirtualNodes(virtualNodes)
    }

    /// The same machine with its cores, in core order and SMT siblings together, split into
    /// `count` contiguous groups whose sizes differ by at most one (the first groups get the extra).
    func splitIntoVirtualNodes(_ count: Int) throws -> Topology {
        let cores = coreCount
        guard count >= 1, count <= cores else {
            throw LabError.badValue(flag: "--virtual-nodes", value: "\(count)",
                                    accepted: "a number from 1 to \(cores) (the cores of \(sourceDescription))")
        }
        let base = cores / count, extra = cores % count
        // Core c goes to the group whose range holds it: groups 0..<extra have base+1 cores.
        func group(ofCore c: Int) -> Int {
            let bigGroupsEnd = extra * (base + 1)
            return c < bigGroupsEnd ? c / (base + 1) : extra + (c - bigGroupsEnd) / base
        }
        let split = cpus.map {
            CPUInfo(cpu: $0.cpu, core: $0.core, smt: $0.smt, node: group(ofCore: $0.core),
                    realNode: $0.realNode, package: $0.package, l3: $0.l3)
        }
        return Topology(cpus: split, source: source, isThisSystem: isThisSystem, virtualNodes: count,
                        cpuModel: cpuModel, hasL3Info: hasL3Info, restriction: restriction)
    }
}

/// The hwloc calls: load a topology, read each PU's place, destroy the topology.
enum HwlocDiscovery {
    static func discover(_ source: TopologySource, affinity: [Int]? = nil) throws -> Topology {
        var handle: hwloc_topology_t?
        guard hwloc_topology_init(&handle) == 0, let topology = handle else {
            throw LabError.impossible("hwloc: could not initialise a topology (out of memory?)")
        }
        defer { hwloc_topology_destroy(topology) }

        switch source {
        case .thisMachine:
            break
        case let .synthetic(text):
            // hwloc rejects unknown types, bad arities and a last level that is not PU here.
            guard hwloc_topology_set_synthetic(topology, text) == 0 else {
                throw LabError.badValue(flag: "--synthetic", value: text,
                                        accepted: "an hwloc synthetic description such as 'pack:2 numa:1 l3:1 core:4 pu:2' (levels from machine down to pu)")
            }
        case let .xml(path):
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw LabError.io("--xml: cannot read '\(path)': no such file or not readable")
            }
            guard hwloc_topology_set_xml(topology, path) == 0 else {
                throw LabError.io("--xml: '\(path)' is not an hwloc XML topology")
            }
        }
        guard hwloc_topology_load(topology) == 0 else {
            switch source {
            case .xml(let path): throw LabError.io("--xml: '\(path)' is not a valid hwloc XML topology")
            case .synthetic(let text): throw LabError.badValue(flag: "--synthetic", value: text, accepted: "a description hwloc can build")
            case .thisMachine: throw LabError.impossible("hwloc could not discover this machine's topology (errno \(errno))")
            }
        }

        let puCount = Int(hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU))
        guard puCount > 0 else { throw LabError.impossible("hwloc found no processing units in \(source)") }
        let isThisSystem = hwloc_topology_is_thissystem(topology) != 0

        // The cpus this process may run on. hwloc has already dropped the PUs a cpuset cgroup
        // disallows; the affinity mask (inherited from taskset, numactl --physcpubind, srun's or a
        // container runtime's binding) is the process's own and hwloc reports it as its binding.
        var everyPU: [Int] = []
        for i in 0..<puCount {
            if let pu = hwloc_get_obj_by_type(topology, HWLOC_OBJ_PU, UInt32(i)) { everyPU.append(Int(pu.pointee.os_index)) }
        }
        var allowedByMask: Set<Int>? = affinity.map(Set.init)
        var maskSource = "the affinity given"
        if affinity == nil, isThisSystem, case .thisMachine = source {
            allowedByMask = processBinding(topology)
            maskSource = "the process's CPU affinity mask (taskset, numactl --physcpubind or a scheduler's binding)"
        }
        var cgroupExcluded = 0
        if isThisSystem, case .thisMachine = source, let complete = hwloc_topology_get_complete_cpuset(topology) {
            cgroupExcluded = max(0, Int(hwloc_bitmap_weight(complete)) - puCount)
        }
        var restriction: CPURestriction?
        if let mask = allowedByMask, !Set(everyPU).isSubset(of: mask) {
            let kept = everyPU.filter(mask.contains)
            guard !kept.isEmpty else {
                throw LabError.impossible("\(maskSource) allows cpus \(TopologyText.cpuRanges(Array(mask))), none of which is among the machine's cpus \(TopologyText.cpuRanges(everyPU))")
            }
            restriction = CPURestriction(allowed: kept, machine: everyPU, by: .affinityMask, source: maskSource,
                                         disallowedByCgroup: cgroupExcluded)
        } else if cgroupExcluded > 0 {
            restriction = CPURestriction(allowed: everyPU, machine: everyPU, by: .cgroup, source: "a cpuset cgroup or offline cpus",
                                         disallowedByCgroup: cgroupExcluded)
        }
        let keep = restriction?.by == .affinityMask ? Set(restriction!.allowed) : nil

        // NUMA nodes that hold cpus, in logical order; CPU-less memory nodes (HBM, CXL, PMEM) are
        // skipped, and a PU covered by two nodes takes the first.
        let numaCount = Int(hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_NUMANODE))
        var numaNodes: [(cpuset: OpaquePointer, osIndex: Int)] = []
        for i in 0..<max(numaCount, 0) {
            guard let node = hwloc_get_obj_by_type(topology, HWLOC_OBJ_NUMANODE, UInt32(i)),
                  let cpuset = node.pointee.cpuset, hwloc_bitmap_iszero(cpuset) == 0 else { continue }
            numaNodes.append((cpuset: cpuset, osIndex: Int(node.pointee.os_index)))
        }

        let hasL3 = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_L3CACHE) > 0
        var cpuModel: String?
        if let package = hwloc_get_obj_by_type(topology, HWLOC_OBJ_PACKAGE, 0),
           let model = hwloc_obj_get_info_by_name(package, "CPUModel") {
            cpuModel = String(cString: model).trimmingCharacters(in: .whitespaces)
        }

        // Walk PUs in logical order so that cores and SMT ranks come out in hwloc's order.
        struct CoreKey: Hashable { let logicalIndex: Int; let isCore: Bool }
        var coreNumbers: [CoreKey: Int] = [:]
        var domainNumbers: [LocalityDomain: Int] = [:]
        var puCountOfCore: [Int] = []
        var result: [CPUInfo] = []
        result.reserveCapacity(puCount)
        for i in 0..<puCount {
            guard let pu = hwloc_get_obj_by_type(topology, HWLOC_OBJ_PU, UInt32(i)) else { continue }
            let osIndex = Int(pu.pointee.os_index)
            // Outside the affinity mask: not ours. Its core keeps no number unless a sibling is ours,
            // and SMT ranks count only the PUs we may use (smt 0 is the first usable one).
            if let keep, !keep.contains(osIndex) { continue }

            // A PU without a Core ancestor (e.g. synthetic "pack:2 pu:2") is its own core.
            let coreObject = hwloc_get_ancestor_obj_by_type(topology, HWLOC_OBJ_CORE, pu)
            let key = coreObject.map { CoreKey(logicalIndex: Int($0.pointee.logical_index), isCore: true) }
                ?? CoreKey(logicalIndex: i, isCore: false)
            let core: Int
            if let known = coreNumbers[key] {
                core = known
            } else {
                core = coreNumbers.count
                coreNumbers[key] = core
                puCountOfCore.append(0)
            }
            let smt = puCountOfCore[core]
            puCountOfCore[core] += 1

            let package = hwloc_get_ancestor_obj_by_type(topology, HWLOC_OBJ_PACKAGE, pu)
                .map { Int($0.pointee.logical_index) } ?? 0
            let l3 = hwloc_get_ancestor_obj_by_type(topology, HWLOC_OBJ_L3CACHE, pu)
                .map { Int($0.pointee.logical_index) } ?? package

            // The locality domain: the NUMA node whose cpuset holds the PU, else (a memory-less
            // node, which hwloc 2.x does not report) the PU's package as a pseudo-node.
            let domain: LocalityDomain
            var realNode = -1
            if let index = numaNodes.firstIndex(where: { hwloc_bitmap_isset($0.cpuset, UInt32(osIndex)) != 0 }) {
                domain = .numaNode(index)
                realNode = numaNodes[index].osIndex
            } else {
                domain = .package(package)
            }
            // Dense node numbers in order of each domain's first PU: only domains with a kept PU count.
            let node: Int
            if let known = domainNumbers[domain] {
                node = known
            } else {
                node = domainNumbers.count
                domainNumbers[domain] = node
            }
            result.append(CPUInfo(cpu: osIndex, core: core, smt: smt, node: node, realNode: realNode,
                                  package: package, l3: l3))
        }

        return Topology(cpus: result, source: source, isThisSystem: isThisSystem,
                        cpuModel: cpuModel, hasL3Info: hasL3, restriction: restriction)
    }

    /// Where a PU's locality comes from: a NUMA node (index into the cpu-holding nodes) or, for a PU
    /// in no NUMA node, its package (logical index).
    enum LocalityDomain: Hashable {
        case numaNode(Int)
        case package(Int)
    }

    /// The OS cpus of the process's CPU binding (the union over its threads, which is the mask the
    /// process was started with: the lab pins only the threads it creates). Nil if hwloc cannot tell.
    static func processBinding(_ topology: hwloc_topology_t) -> Set<Int>? {
        guard let set = hwloc_bitmap_alloc() else { return nil }
        defer { hwloc_bitmap_free(set) }
        guard hwloc_get_cpubind(topology, set, Int32(HWLOC_CPUBIND_PROCESS.rawValue)) == 0 else { return nil }
        var cpus = Set<Int>()
        var index = hwloc_bitmap_first(set)
        while index >= 0 {
            cpus.insert(Int(index))
            index = hwloc_bitmap_next(set, index)
        }
        // An infinite set (no binding at all) has no last bit: every cpu is allowed.
        return hwloc_bitmap_last(set) < 0 ? nil : cpus
    }
}

/// Text helpers for topology and plan messages (a namespace, so the names stay out of the module).
enum TopologyText {
    /// "1 package", "2 packages".
    static func plural(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }

    /// A cpu list as ranges: [0,1,2,3,8,10] -> "0-3,8,10".
    static func cpuRanges(_ cpus: [Int]) -> String {
        let sorted = Set(cpus).sorted()
        var parts: [String] = []
        var i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count, sorted[j + 1] == sorted[j] + 1 { j += 1 }
            parts.append(j == i ? "\(sorted[i])" : "\(sorted[i])-\(sorted[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    /// "4" for 8/2, "1.5" for 3/2.
    static func ratio(_ a: Int, _ b: Int) -> String {
        if a % b == 0 { return "\(a / b)" }
        let tenths = (a * 10 + b / 2) / b
        return "\(tenths / 10).\(tenths % 10)"
    }
}

/// The process may use fewer CPUs than the machine has, and why.
public struct CPURestriction: Sendable, Equatable {
    public enum Cause: String, Sendable {
        /// The process's CPU affinity mask (sched_setaffinity: taskset, numactl --physcpubind, a
        /// batch scheduler's or container runtime's binding).
        case affinityMask = "affinity mask"
        /// A cpuset cgroup (or offline cpus): hwloc reports only the allowed PUs.
        case cgroup = "cpuset cgroup"
    }
    /// OS cpus the lab sees and may place threads on.
    public let allowed: [Int]
    /// OS cpus of the machine as hwloc found it (after any cgroup).
    public let machine: [Int]
    public let by: Cause
    /// In words: what set the restriction.
    public let source: String
    /// PUs of the machine a cgroup (or going offline) took away before the mask was applied.
    public let disallowedByCgroup: Int

    /// For the summary line (and so the manifest's topology): "restricted to cpus 1 of 0-1 by the affinity mask".
    public var summary: String {
        switch by {
        case .affinityMask:
            var text = "restricted to cpus \(TopologyText.cpuRanges(allowed)) of \(TopologyText.cpuRanges(machine)) by the affinity mask"
            if disallowedByCgroup > 0 { text += " and \(disallowedByCgroup) more by a cpuset cgroup or offline" }
            return text
        case .cgroup:
            return "\(TopologyText.plural(disallowedByCgroup, "cpu")) not allowed by a cpuset cgroup or offline"
        }
    }

    /// For `locklab topology`: what the view is and what placement does about it.
    public var explanation: String {
        switch by {
        case .affinityMask:
            return "restricted view: this process may run on cpus \(TopologyText.cpuRanges(allowed)) only (of \(TopologyText.cpuRanges(machine))), "
                + "set by \(source); placements use only these, and cpus:LIST outside them is refused"
        case .cgroup:
            return "restricted view: \(summary); hwloc shows the allowed cpus only"
        }
    }
}
