// `locklab topology`: what hwloc sees, as the harness will use it.

import ArgumentParser
import LockLab

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Show the machine's packages, NUMA nodes, L3 groups, cores and CPUs as hwloc reports them.",
        discussion: "Without --xml or --synthetic this is the machine the command runs on.")

    @OptionGroup var topology: TopologyOptions

    func run() throws {
        print(try topology.load().describe())
    }
}
