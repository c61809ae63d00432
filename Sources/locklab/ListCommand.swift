import ArgumentParser
import LockLab

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "TODO")
    func run() throws { throw ValidationError("not yet implemented") }
}
