// How far apart two CPUs are, in the classes the coherence probe reports: what a cache line moving
// between them has to cross.
//
// From nearest to farthest:
//   smt            two hardware threads of one core (they share the L1 and L2: no transfer at all);
//   same-l3        two cores under one L3 (the line moves through the shared L3 / its snoop filter);
//   same-node      one NUMA node, different L3 groups (e.g. two CCXs of one AMD node);
//   virtual        two *virtual* nodes (`--virtual-nodes`) of one real node: not a remote transfer,
//                  named so nobody reads it as one; measured like same-l3 or same-node;
//   other-node     two real NUMA nodes of one package (sub-NUMA clustering, AMD NPS2/NPS4);
//   other-package  two sockets: the line crosses the socket interconnect (UPI, Infinity Fabric).
// Package and real node are tested first, so a pair that crosses nodes under one L3 (Intel SNC)
// counts as other-node. Without L3 information (hwloc reported none) same-l3 is never claimed.

public enum DistanceClass: String, CaseIterable, Sendable, Codable, Comparable {
    case smt
    case sameL3 = "same-l3"
    case sameNode = "same-node"
    case virtual
    case otherNode = "other-node"
    case otherPackage = "other-package"

    var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: DistanceClass, b: DistanceClass) -> Bool { a.rank < b.rank }
}

/// An ordered pair of CPUs for the probe: `owner` (cpu_a) prepares the line, `timer` (cpu_b) times.
public struct ProbePair: Sendable, Equatable, Hashable {
    public let owner: Int
    public let timer: Int
    public let distance: DistanceClass
    public init(owner: Int, timer: Int, distance: DistanceClass) {
        self.owner = owner
        self.timer = timer
        self.distance = distance
    }
}

extension Topology {
    /// The distance class between two CPUs of this topology (a != b).
    public func distance(_ a: CPUInfo, _ b: CPUInfo) -> DistanceClass {
        if a.package != b.package { return .otherPackage }
        if a.realNode != b.realNode { return .otherNode }
        if a.core == b.core { return .smt }
        if virtualNodes != nil, a.node != b.node { return .virtual }
        if hasL3Info, a.l3 == b.l3 { return .sameL3 }
        return .sameNode
    }

    /// The distance class between OS CPUs `a` and `b`, nil when either is not in the topology.
    public func distance(cpu a: Int, cpu b: Int) -> DistanceClass? {
        guard let x = info(cpu: a), let y = info(cpu: b) else { return nil }
        return distance(x, y)
    }

    /// One pair per distance class the topology has, nearest class first: for each class the first
    /// pair (a < b, in OS index order) of that class. Throws when the topology has fewer than two CPUs.
    public func representativePairs() throws -> [ProbePair] {
        try requireTwoCPUs()
        var found: [DistanceClass: ProbePair] = [:]
        outer: for i in 0..<cpus.count {
            for j in (i + 1)..<cpus.count {
                let d = distance(cpus[i], cpus[j])
                if found[d] == nil {
                    found[d] = ProbePair(owner: cpus[i].cpu, timer: cpus[j].cpu, distance: d)
                    if found.count == DistanceClass.allCases.count { break outer }
                }
            }
        }
        return found.values.sorted { $0.distance < $1.distance }
    }

    /// Every ordered pair of distinct CPUs (the heat map), in OS index order.
    public func allOrderedPairs() throws -> [ProbePair] {
        try requireTwoCPUs()
        var pairs: [ProbePair] = []
        pairs.reserveCapacity(cpus.count * (cpus.count - 1))
        for a in cpus {
            for b in cpus where b.cpu != a.cpu {
                pairs.append(ProbePair(owner: a.cpu, timer: b.cpu, distance: distance(a, b)))
            }
        }
        return pairs
    }

    /// Parses `--cpus A,B` against this topology: two different CPUs it has.
    public func probePair(parsing text: String) throws -> ProbePair {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        let accepted = "two different CPUs of \(sourceDescription) as A,B (A prepares the line, B times), from \(TopologyText.cpuRanges(cpus.map(\.cpu)))"
        try requireTwoCPUs()
        guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), a != b,
              let x = info(cpu: a), let y = info(cpu: b) else {
            throw LabError.badValue(flag: "--cpus", value: text, accepted: accepted)
        }
        return ProbePair(owner: a, timer: b, distance: distance(x, y))
    }

    private func requireTwoCPUs() throws {
        guard cpus.count >= 2 else {
            // A restricted view (affinity mask, cpuset) is not the machine: say what is allowed of what.
            if let r = restriction {
                throw LabError.impossible("coherence: this process may use \(TopologyText.plural(r.allowed.count, "CPU")) (\(TopologyText.cpuRanges(r.allowed)) of \(TopologyText.cpuRanges(r.machine)), \(r.summary)); moving a line between cores needs two allowed")
            }
            throw LabError.impossible("coherence: \(sourceDescription) has \(TopologyText.plural(cpus.count, "CPU")); moving a line between cores needs two")
        }
    }
}
