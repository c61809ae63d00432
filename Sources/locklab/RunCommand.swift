import ArgumentParser
import LockLab

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "TODO")
    func run() throws { throw ValidationError("not yet implemented") }
}
