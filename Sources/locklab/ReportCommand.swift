// `locklab report DIR [--locks a,b] [--panels family|none] [--baseline LOCK]`: figures, fits,
// summary.csv, report.md and report.html from DIR/runs.csv (Experiments/report, Python).

import ArgumentParser
import Foundation
import LockLab

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Draw DIR/figures, fit Amdahl and USL into DIR/fits.csv, write summary.csv, report.md and report.html.",
        discussion: """
            One figure per metric and configuration, named figures/<figure>__<configuration>.{png,svg,pdf}:
            small panels, one per lock family, with pthread-mutex and mcs in grey in each. Options not
            given are those DIR/report.json remembers from the last report (--defaults forgets them).
            """)

    @Argument(help: ArgumentHelp("A results folder with runs.csv (or a `locklab coherence --out` folder).", valueName: "DIR"))
    var directory: String

    @Option(help: ArgumentHelp("Comma-separated locks to draw (labels or names; default all).", valueName: "a,b,c"))
    var locks: String?

    @Option(help: ArgumentHelp("family (one panel per lock family), none (one panel), or a JSON list of lock lists.", valueName: "how"))
    var panels: String?

    @Option(help: ArgumentHelp("The lock the relative figure divides by (default mcs).", valueName: "LOCK"))
    var baseline: String?

    @Option(help: ArgumentHelp("Comma-separated figures: throughput, relative, fairness, latency_p99, handover, cpu_per_mop, read_ratio, read_update.", valueName: "list"))
    var figures: String?

    @Option(help: ArgumentHelp("The thread count of the read-mostly figures (default: the largest not oversubscribed).", valueName: "N"))
    var readThreads: Int?

    @Flag(help: "Ignore the options remembered in DIR/report.json.")
    var defaults = false

    func run() throws {
        var arguments: [String] = []
        if let locks { arguments += ["--locks", locks] }
        if let panels { arguments += ["--panels", panels] }
        if let baseline { arguments += ["--baseline", baseline] }
        if let figures { arguments += ["--figures", figures] }
        if let readThreads { arguments += ["--read-threads", String(readThreads)] }
        if defaults { arguments.append("--defaults") }
        try Self.generate(directory: directory, arguments: arguments)
    }

    /// The generator's arguments for an experiment file's `report:` section.
    static func arguments(for experiment: Experiment) -> [String] {
        var arguments = ["--figures", experiment.figures.joined(separator: ",")]
        if let panels = experiment.panels { arguments += ["--panels", panels] }
        if let baseline = experiment.baseline { arguments += ["--baseline", baseline] }
        if let readThreads = experiment.readThreads { arguments += ["--read-threads", String(readThreads)] }
        return arguments
    }

    /// Runs `PYTHON -m report DIR ARGUMENTS` from the Experiments folder of this checkout. PYTHON is
    /// $LOCKLAB_PYTHON if set, else the checkout's own virtual environment (`.venv`, made by
    /// `make setup`) if there is one, else `python3` on the PATH. The generator's own errors (bad
    /// option, unknown lock) exit with status 2 and one line.
    static func generate(directory: String, arguments extra: [String] = []) throws {
        guard let experiments = findExperimentsFolder() else {
            throw LabError.io("cannot find Experiments/report (set LOCKLAB_EXPERIMENTS to the Experiments folder)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let venv = URL(fileURLWithPath: experiments).deletingLastPathComponent().appendingPathComponent(".venv/bin/python3").path
        let python = ProcessInfo.processInfo.environment["LOCKLAB_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (FileManager.default.isExecutableFile(atPath: venv) ? venv : "python3")
        process.arguments = [python, "-m", "report", URL(fileURLWithPath: directory).path] + extra
        process.currentDirectoryURL = URL(fileURLWithPath: experiments)
        fflush(stdout) // our buffered lines first, then the generator's
        try process.run()
        process.waitUntilExit()
        if process.terminationStatus == 2 {
            // The generator printed its one line already.
            throw ExitCode(2)
        }
        if process.terminationStatus != 0 {
            throw LabError.impossible("the report generator failed (exit \(process.terminationStatus))")
        }
    }

    static func findExperimentsFolder() -> String? {
        if let env = ProcessInfo.processInfo.environment["LOCKLAB_EXPERIMENTS"] { return env }
        var candidates: [URL] = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            candidates.append(dir)
            dir = dir.deletingLastPathComponent()
        }
        for c in candidates {
            let e = c.appendingPathComponent("Experiments")
            if FileManager.default.fileExists(atPath: e.appendingPathComponent("report/__main__.py").path) { return e.path }
        }
        return nil
    }
}
