// The `locklab` command: one file per subcommand; the logic lives in the LockLab library.

import ArgumentParser
import LockLab

@main
struct LockLabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "locklab",
        abstract: "Measure how locks scale on multicore and NUMA machines.",
        version: lockLabVersion,
        subcommands: [ListCommand.self, TopologyCommand.self, PlanCommand.self, RunCommand.self])
}
