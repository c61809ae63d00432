// `locklab plan`: which CPU each thread of a run would use, without running anything.

import ArgumentParser
import Foundation
import LockLab

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show which CPU, core, node and package each thread would run on.",
        discussion: """
            More threads than CPUs wrap round the placement and are reported as oversubscribed. \
            With --placement os no thread is pinned (cpu, core and package are '-', empty in CSV): the OS \
            scheduler places them, and each thread's node is a label (the node compact gives it), not \
            where it runs.
            """)

    @Option(parsing: .unconditional, help: ArgumentHelp("Number of threads to place (at least 1).", valueName: "N"))
    var threads: Int

    @Option(help: ArgumentHelp("compact (fill node 0's cores, then node 1's, SMT siblings last), scatter (round-robin over nodes, SMT siblings last), cpus:LIST (exactly these OS CPUs in order, e.g. cpus:0,2,4 or cpus:0-3) or os (unpinned: the OS scheduler places the threads; nodes are compact's, as labels).",
                               valueName: "placement"))
    var placement: String = "compact"

    @Option(help: ArgumentHelp("An executor whose server threads take CPUs first (e.g. ffwd, rcl): the plan shows them.", valueName: "lock"))
    var lock: String?

    @Flag(help: "Print CSV: the header thread,cpu,core,node,package and one row per thread (notes go to stderr).")
    var csv = false

    @OptionGroup var topology: TopologyOptions

    func run() throws {
        let machine = try topology.load()
        let helpers = try lock.map { try LockSpec(parsing: $0).entry.descriptor.helperThreads } ?? 0
        let plan = try machine.plan(threads: threads, placement: try Placement(parsing: placement), helpers: helpers)
        if csv {
            let roles = helpers > 0 ? ["role"] : []
            let clientRows = plan.threads.map { t in [String(t.thread), cell(t.cpu, ""), cell(t.core, ""), String(t.node), cell(t.package, "")] + (helpers > 0 ? ["client"] : []) }
            let serverRows = plan.helpers.map { t in [String(t.thread), cell(t.cpu, ""), cell(t.core, ""), String(t.node), cell(t.package, "")] + ["server"] }
            print(CSVFormat.table(header: ["thread", "cpu", "core", "node", "package"] + roles, rows: clientRows + serverRows),
                  terminator: "")
            if let note = plan.note { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
            return
        }
        print("\(plural(threads, "thread")), \(placement), on \(machine.summary)")
        if !machine.isThisSystem { print("not this machine: a plan only, threads cannot be bound") }
        let virtual = machine.virtualNodes != nil
        var header = ["thread", "cpu", "core", "node"]
        if virtual { header.append("real node") }
        header.append("package")
        var rows: [[String]] = []
        if helpers > 0 { header.append("role") }
        for (t, role) in plan.threads.map({ ($0, "client") }) + plan.helpers.map({ ($0, "server") }) {
            var row = [String(t.thread), cell(t.cpu, "-"), cell(t.core, "-"), String(t.node)]
            if virtual { row.append(t.realNode < 0 ? "none" : String(t.realNode)) }
            row.append(cell(t.package, "-"))
            if helpers > 0 { row.append(role) }
            rows.append(row)
        }
        print(textTable(header: header, rows: rows))
        if plan.unpinned {
            print("threads unpinned: the OS scheduler places them; node is a label (compact's), not where a thread runs")
        } else {
            print("\(plural(plan.cpusUsed, "CPU")) on \(plural(plan.nodesUsed, "node")) used")
        }
        if let note = plan.note { print("note: \(note)") }
    }

    /// A number, or `none` for an unpinned thread's cpu, core or package.
    private func cell(_ value: Int?, _ none: String) -> String { value.map(String.init) ?? none }
}
