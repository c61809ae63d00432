// `locklab list`: every lock, grouped by family, with its waiting policy, options and paper.

import ArgumentParser
import LockLab

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List every lock with its family, waiting policy (spin/park), how it treats reads, options and paper.",
        discussion: """
            reads: exclusive (every operation excludes every other), shared (the workload's reads \
            run beside each other, never beside an update: reader-writer locks), optimistic (reads \
            may run beside an update and are retried or read an old version).
            """)

    @Flag(help: "Print CSV: name,family,waiting,trylock,reads,max_threads,options,paper.")
    var csv = false

    func run() throws {
        let entries = LockRegistry.all
        if csv {
            let rows = entries.map { e -> [String] in
                let d = e.descriptor
                let options = d.options.map { "\($0.key)=\($0.text($0.defaultValue))" }.joined(separator: ";")
                return [d.name, d.family.rawValue, d.waiting.rawValue, d.supportsTryLock ? "1" : "0",
                        e.readSharing.rawValue, d.maxThreads.map(String.init) ?? "", options, d.paper]
            }
            print(CSVFormat.table(header: ["name", "family", "waiting", "trylock", "reads", "max_threads", "options", "paper"],
                                  rows: rows), terminator: "")
            return
        }
        for family in LockFamily.allCases {
            let members = entries.filter { $0.descriptor.family == family }
            if members.isEmpty { continue }
            print("\(family.rawValue):")
            let rows = members.map { e -> [String] in
                let d = e.descriptor
                let options = d.options.map { "\($0.key)=\($0.text($0.defaultValue))" }.joined(separator: " ")
                return [d.name, d.waiting.rawValue, d.supportsTryLock ? "yes" : "no", e.readSharing.rawValue, options, d.paper]
            }
            let table = textTable(header: ["lock", "waits", "trylock", "reads", "options (default)", "paper"], rows: rows)
            print(table.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        }
        print("Options: NAME:KEY=VALUE[:KEY=VALUE], e.g. backoff:max-backoff=4096.")
    }
}
