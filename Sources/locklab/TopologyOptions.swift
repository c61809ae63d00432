// The flags that choose a topology, shared by `topology`, `plan` and (later) `run`.

import ArgumentParser
import LockLab

struct TopologyOptions: ParsableArguments {
    @Option(name: .customLong("virtual-nodes"), parsing: .unconditional,
            help: ArgumentHelp("Split the cores, in core order and keeping SMT siblings together, into N contiguous, equal-as-possible virtual NUMA nodes (1 to the number of cores).",
                               valueName: "N"))
    var virtualNodes: Int?

    @Option(help: ArgumentHelp("Read the topology from an hwloc XML file (from `lstopo --of xml FILE`) instead of this machine: plan only, no binding.",
                               valueName: "file"))
    var xml: String?

    @Option(help: ArgumentHelp("Use an hwloc synthetic topology instead of this machine, e.g. \"pack:2 numa:1 l3:1 core:4 pu:2\": plan only, no binding.",
                               valueName: "description"))
    var synthetic: String?

    func validate() throws {
        if xml != nil, synthetic != nil {
            throw ValidationError("--xml and --synthetic are mutually exclusive: give at most one")
        }
    }

    /// The topology these flags describe.
    func load() throws -> Topology {
        let source: TopologySource
        if let xml {
            source = .xml(xml)
        } else if let synthetic {
            source = .synthetic(synthetic)
        } else {
            source = .thisMachine
        }
        return try Topology.load(source, virtualNodes: virtualNodes)
    }
}
