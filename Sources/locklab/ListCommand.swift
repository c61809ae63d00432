// `locklab list`: every lock, grouped by family, with its waiting policy, options and paper.

import ArgumentParser
import LockLab

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List every lock with its family, waiting policy (spin/park), options and paper.")

    @Flag(help: "Print CSV: name,family,waiting,trylock,max_threads,options,paper.")
    var csv = false

    func run() throws {
        let entries = LockRegistry.all.map(\.descriptor)
        if csv {
            let rows = entries.map { d -> [String] in
                let options = d.options.map { "\($0.key)=\($0.defaultValue)" }.joined(separator: ";")
                return [d.name, d.family.rawValue, d.waiting.rawValue, d.supportsTryLock ? "1" : "0",
                        d.maxThreads.map(String.init) ?? "", options, d.paper]
            }
            print(CSVFormat.table(header: ["name", "family", "waiting", "trylock", "max_threads", "options", "paper"],
                                  rows: rows), terminator: "")
            return
        }
        for family in LockFamily.allCases {
            let members = entries.filter { $0.family == family }
            if members.isEmpty { continue }
            print("\(family.rawValue):")
            let rows = members.map { d -> [String] in
                let options = d.options.map { "\($0.key)=\($0.defaultValue)" }.joined(separator: " ")
                return [d.name, d.waiting.rawValue, d.supportsTryLock ? "yes" : "no", options, d.paper]
            }
            let table = textTable(header: ["lock", "waits", "trylock", "options (default)", "paper"], rows: rows)
            print(table.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        }
        print("Options: NAME:KEY=VALUE[:KEY=VALUE], e.g. backoff:max-backoff=4096.")
    }
}
