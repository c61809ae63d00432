// Thread placement: which cpu each benchmark thread runs on.
//
// A placement orders the topology's cpus into slots; thread k takes slot k % slots, so more threads
// than slots wrap round and the plan says it is oversubscribed.
// - compact: node 0's cores one PU each, then node 1's, …; second PUs (SMT siblings) of every core
//   only after every core of every node has a thread. Sort key (smt, node, core).
// - scatter: thread i on node i % nodes while nodes have free slots; within a node cores in order,
//   SMT siblings last. Per-node slot lists sorted by (smt, core), then interleaved.
// - cpus:LIST: exactly those OS cpus, in the given order.
// - os: no thread is pinned; the OS scheduler places them (and may move them) over the process's
//   CPUs, as Dice et al.'s Malthusian locks (EuroSys 2017) and most applications assume. Each thread
//   still gets compact's node for thread i, as a label for NUMA-aware locks and handover locality:
//   it is not where the thread runs, so same_node_handover_frac then counts labels. A plan reserves
//   no CPU for helper threads under os (nothing is pinned), so an executor with a server is refused.

/// How threads are laid out over the machine.
public enum Placement: Sendable, Equatable, CustomStringConvertible {
    /// Fill one node's cores before the next; SMT siblings last.
    case compact
    /// Round-robin over nodes; SMT siblings last.
    case scatter
    /// Exactly these OS cpus, in order.
    case cpus([Int])
    /// No thread pinned: the OS scheduler places them. Nodes are compact's, as labels only.
    case os

    /// Largest OS cpu number a list may name: beyond any machine, and small enough that a range
    /// such as `cpus:0-9223372036854775807` is refused at once instead of built.
    public static let maxCPU = 65_535

    static let accepted = "'compact', 'scatter', 'os' (unpinned) or 'cpus:' and a list of OS cpus (0...65535) such as cpus:0,2,4 or cpus:0-3,8"

    /// Parses "compact", "scatter", "os" or "cpus:0,2,4" (ranges "a-b" are allowed in the list).
    public init(parsing text: String) throws {
        switch text {
        case "compact": self = .compact
        case "scatter": self = .scatter
        case "os": self = .os
        default:
            guard text.hasPrefix("cpus:") else {
                throw LabError.badValue(flag: "--placement", value: text, accepted: Self.accepted)
            }
            let list = text.dropFirst("cpus:".count)
            var cpus: [Int] = []
            for item in list.split(separator: ",", omittingEmptySubsequences: false) {
                let bounds = item.split(separator: "-", omittingEmptySubsequences: false)
                if bounds.count == 1, let cpu = Int(bounds[0]), cpu >= 0, cpu <= Self.maxCPU {
                    cpus.append(cpu)
                } else if bounds.count == 2, let low = Int(bounds[0]), let high = Int(bounds[1]), low >= 0, low <= high,
                          high <= Self.maxCPU {
                    cpus.append(contentsOf: low...high)
                } else {
                    throw LabError.badValue(flag: "--placement", value: text, accepted: Self.accepted)
                }
            }
            guard !cpus.isEmpty else {
                throw LabError.badValue(flag: "--placement", value: text, accepted: Self.accepted)
            }
            self = .cpus(cpus)
        }
    }

    /// "compact", "scatter", "os" or "cpus:0,2,4"; `Placement(parsing: p.description) == p`.
    public var description: String {
        switch self {
        case .compact: return "compact"
        case .scatter: return "scatter"
        case .os: return "os"
        case let .cpus(list): return "cpus:" + list.map(String.init).joined(separator: ",")
        }
    }
}

/// Where one thread runs. Under placement `os` the thread is unpinned: `cpu`, `core` and `package`
/// are nil, and `node`/`realNode` are labels (compact's for this thread), not where it runs.
public struct ThreadPlacement: Sendable, Equatable {
    public let thread: Int
    /// The OS cpu the thread is pinned to; nil: unpinned (placement `os`).
    public let cpu: Int?
    public let core: Int?
    /// The node as the run sees it (virtual under `--virtual-nodes`); a label under `os`.
    public let node: Int
    /// hwloc's OS index of the real NUMA node: what libnuma allocation takes; -1 for a cpu in no
    /// NUMA node (its `node` is then its package's pseudo-node).
    public let realNode: Int
    public let package: Int?

    public init(thread: Int, cpu: Int?, core: Int?, node: Int, realNode: Int, package: Int?) {
        self.thread = thread
        self.cpu = cpu
        self.core = core
        self.node = node
        self.realNode = realNode
        self.package = package
    }

    /// The thread as the run, the lock and the group know it: pinned to this CPU (or unpinned), on this node.
    public var slot: ThreadSlot { ThreadSlot(index: thread, cpu: cpu, node: node) }
}

/// The cpu of every thread of a run.
public struct Plan: Sendable {
    /// One entry per thread, in thread order.
    public let threads: [ThreadPlacement]
    /// CPUs reserved for helper threads (a delegation server), each its own CPU, taken first from
    /// the placement's order; their thread numbers follow the clients'. Empty for a plain run.
    public let helpers: [ThreadPlacement]
    /// True when some cpu runs more than one thread (threads > distinct cpus used; under `os`,
    /// threads > the CPUs the process may use).
    public let oversubscribed: Bool
    /// Distinct cpus that have a thread; under `os` the CPUs the scheduler can give the threads at
    /// once (threads, at most the process's CPUs).
    public let cpusUsed: Int
    /// True when no thread is pinned (placement `os`): nodes are labels.
    public let unpinned: Bool
    /// What a reader should know about the plan: oversubscription, shared cores. Nil when nothing.
    public let note: String?

    /// The client threads' slots, in thread order.
    public var slots: [ThreadSlot] { threads.map(\.slot) }
    /// The helper threads' slots (indices after the clients').
    public var helperSlots: [ThreadSlot] { helpers.map(\.slot) }

    /// Distinct nodes (as the run sees them) that have a thread.
    public var nodesUsed: Int { Set(threads.map(\.node)).count }
}

extension Topology {
    /// Places `threads` client threads, after reserving the placement's first `helpers` CPUs for
    /// helper threads (one each; clients never share them). Throws a `LabError` for threads < 1,
    /// a cpu the topology lacks, helpers that leave no CPU for the clients, or helpers under `os`
    /// (which pins nothing, so reserves nothing).
    public func plan(threads: Int, placement: Placement, helpers: Int = 0) throws -> Plan {
        guard threads >= 1, threads <= Limits.maxThreads else {
            throw LabError.badValue(flag: "--threads", value: "\(threads)", accepted: "a whole number in 1...\(Limits.maxThreads)")
        }
        if placement == .os {
            guard helpers == 0 else {
                throw LabError.impossible("\(TopologyText.plural(helpers, "helper thread")) need their own CPUs, but placement os "
                    + "pins no thread and so reserves no CPU: use compact, scatter or cpus:LIST")
            }
            return try osPlan(threads: threads)
        }
        let all = try self.slots(for: placement)
        guard helpers >= 0, helpers < all.count else {
            throw LabError.impossible("\(TopologyText.plural(helpers, "helper thread")) need their own CPUs, but placement \(placement) "
                + "has \(TopologyText.plural(all.count, "CPU")): none would be left for the clients")
        }
        let helperPlaced = all.prefix(helpers).enumerated().map { k, c in
            ThreadPlacement(thread: threads + k, cpu: c.cpu, core: c.core, node: c.node, realNode: c.realNode, package: c.package)
        }
        let slots = Array(all.dropFirst(helpers))
        let placed = (0..<threads).map { thread -> ThreadPlacement in
            let c = slots[thread % slots.count]
            return ThreadPlacement(thread: thread, cpu: c.cpu, core: c.core, node: c.node, realNode: c.realNode,
                                   package: c.package)
        }

        let cpusUsed = Set(placed.map(\.cpu)).count
        let coresUsed = Set(placed.map(\.core)).count
        let oversubscribed = threads > cpusUsed
        var notes: [String] = []
        if oversubscribed {
            notes.append("\(TopologyText.plural(threads, "thread")) on \(TopologyText.plural(cpusUsed, "CPU")): oversubscribed "
                + "\(TopologyText.ratio(threads, cpusUsed))x, placement wraps round")
        }
        if cpusUsed > coresUsed {
            notes.append("\(TopologyText.plural(cpusUsed, "CPU")) on \(TopologyText.plural(coresUsed, "core")): SMT siblings share cores")
        }
        if helpers > 0 {
            notes.append("\(TopologyText.plural(helpers, "CPU")) reserved for helper threads: \(all.prefix(helpers).map { String($0.cpu) }.joined(separator: ","))")
        }
        return Plan(threads: placed, helpers: helperPlaced, oversubscribed: oversubscribed, cpusUsed: cpusUsed,
                    unpinned: false, note: notes.isEmpty ? nil : notes.joined(separator: "; "))
    }

    /// Placement `os`: every thread unpinned, labelled with the node compact gives thread i.
    private func osPlan(threads: Int) throws -> Plan {
        let compact = try slots(for: .compact)
        let placed = (0..<threads).map { thread -> ThreadPlacement in
            let c = compact[thread % compact.count]
            return ThreadPlacement(thread: thread, cpu: nil, core: nil, node: c.node, realNode: c.realNode, package: nil)
        }
        var note = "threads unpinned: the OS scheduler places them on cpus \(TopologyText.cpuRanges(cpus.map(\.cpu)))"
        if nodeCount > 1 {
            note += "; each thread's node is a label (compact's), not where it runs, so same-node handovers count labels"
        }
        if threads > cpus.count {
            note = "\(TopologyText.plural(threads, "thread")) on \(TopologyText.plural(cpus.count, "CPU")): oversubscribed "
                + "\(TopologyText.ratio(threads, cpus.count))x; " + note
        }
        return Plan(threads: placed, helpers: [], oversubscribed: threads > cpus.count, cpusUsed: min(threads, cpus.count),
                    unpinned: true, note: note)
    }

    /// The cpus in the order the placement hands them out (`os`: compact's order, for the labels).
    func slots(for placement: Placement) throws -> [CPUInfo] {
        switch placement {
        case .compact, .os:
            return cpus.sorted { ($0.smt, $0.node, $0.core, $0.cpu) < ($1.smt, $1.node, $1.core, $1.cpu) }

        case .scatter:
            let byNode = Dictionary(grouping: cpus, by: \.node)
            let perNode = byNode.keys.sorted().map { node in
                byNode[node]!.sorted { ($0.smt, $0.core, $0.cpu) < ($1.smt, $1.core, $1.cpu) }
            }
            // Round r takes the r-th slot of each node that still has one.
            var order: [CPUInfo] = []
            order.reserveCapacity(cpus.count)
            for round in 0..<(perNode.map(\.count).max() ?? 0) {
                for slots in perNode where round < slots.count { order.append(slots[round]) }
            }
            return order

        case let .cpus(list):
            return try list.map { cpu in
                guard let info = info(cpu: cpu) else {
                    if let restriction, restriction.by == .affinityMask, restriction.machine.contains(cpu) {
                        throw LabError.impossible("--placement \(placement): cpu \(cpu) is outside this process's CPU affinity mask "
                            + "(it may use cpus \(TopologyText.cpuRanges(cpus.map(\.cpu))) only, set by taskset, numactl or a scheduler's binding)")
                    }
                    throw LabError.impossible("--placement \(placement): cpu \(cpu) is not in \(sourceDescription) "
                        + "(cpus \(TopologyText.cpuRanges(cpus.map(\.cpu))))")
                }
                return info
            }
        }
    }
}
