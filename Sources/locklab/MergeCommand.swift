// `locklab merge DIR`: a sharded sweep's shards (DIR/shards/I/) gathered into one results folder.

import ArgumentParser
import Foundation
import LockLab

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Gather a sharded sweep's DIR/shards/* into DIR/runs.csv, DIR/threads.csv and DIR/manifest.json.",
        discussion: """
            Every shard 1...N must be complete (each run of its plan, DIR/shards/I/shard.json, recorded); \
            otherwise one line names each missing or incomplete shard and nothing is written (with \
            --partial: the runs recorded are merged, the manifest and the report say what is missing). Shards of \
            different builds are refused; shards of different machines or topologies are refused unless \
            --allow-mixing, and then every row keeps its machine column and the manifest lists every \
            shard's machine, build and topology. Merging again gives the same folder.
            """)

    @Argument(help: ArgumentHelp("The sharded sweep's folder (the --out of `locklab sweep FILE --shard I/N`).", valueName: "DIR"))
    var directory: String

    @Flag(name: .customLong("allow-mixing"), help: "Merge shards that ran on different machines or topologies (each row keeps its machine).")
    var allowMixing = false

    @Flag(help: "Merge the runs the shards recorded even if some shards are missing or unfinished; the manifest and the report say what is missing.")
    var partial = false

    @Flag(help: "Run the report generator on DIR after merging.")
    var report = false

    func run() throws {
        let wasPartial = Manifest.read(in: directory)?.partial != nil
        let outcome = try ShardMerge.merge(directory: directory, allowMixing: allowMixing, partial: partial)
        let machines = outcome.machines.count > 1 ? "machines \(outcome.machines.joined(separator: ", "))" : "machine \(outcome.machines.first ?? "?")"
        let notOK = outcome.notOK > 0 ? " (\(outcome.notOK) hung or failed: see the status column)" : ""
        print("merged \(plural(outcome.shards, "shard")) into \(directory): \(plural(outcome.runs, "run"))\(notOK), \(outcome.threadRows) thread rows, \(machines)")
        if !outcome.missing.isEmpty { print("partial: \(outcome.missing.joined(separator: ", ")); merge again when they are done") }
        if wasPartial && !report && FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("report.md")) {
            print("note: \(directory)/report.md is the partial merge's; `locklab report \(directory)` draws the merged folder")
        }
        if report {
            try ReportCommand.generate(directory: directory,
                                       arguments: outcome.figures.map { ["--figures", $0.joined(separator: ",")] } ?? [])
        }
    }
}
