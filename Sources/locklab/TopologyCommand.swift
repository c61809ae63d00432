import ArgumentParser
import LockLab

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "topology", abstract: "TODO")
    func run() throws { throw ValidationError("not yet implemented") }
}
