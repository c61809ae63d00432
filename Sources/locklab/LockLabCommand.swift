// The `locklab` command: one file per subcommand; the logic lives in the LockLab library.

import ArgumentParser
import Foundation
import LockLab

@main
struct LockLabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "locklab",
        abstract: "Measure how locks scale on multicore and NUMA machines.",
        version: lockLabVersion,
        subcommands: [ListCommand.self, TopologyCommand.self, PlanCommand.self, RunCommand.self,
                      SweepCommand.self, MergeCommand.self, SlurmCommand.self, ReportCommand.self,
                      OverheadCommand.self, TortureCommand.self, ValidateCommand.self, CoherenceCommand.self])

    /// Bad input of any kind (flag, lock, option, placement, file) ends with one line on stderr and
    /// exit code 2; help and version exit 0 as usual.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }
            let message: String
            switch error {
            case let e as LabError: message = e.description
            case let e as LockError: message = e.description
            default: message = self.message(for: error)
            }
            let firstLine = message.split(separator: "\n").first.map(String.init) ?? message
            FileHandle.standardError.write(Data("locklab: error: \(firstLine)\n".utf8))
            Foundation.exit(2)
        }
    }
}
