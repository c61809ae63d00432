import ArgumentParser
import LockLab

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "TODO")
    func run() throws { throw ValidationError("not yet implemented") }
}
