// `locklab report DIR`: figures, fits and report.md from DIR/runs.csv (Experiments/report, Python).

import ArgumentParser
import Foundation
import LockLab

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Draw DIR/figures/*.{pdf,svg,png}, fit Amdahl and USL into DIR/fits.csv, write DIR/report.md.")

    @Argument(help: ArgumentHelp("A results folder with runs.csv (or a `locklab coherence --out` folder).", valueName: "DIR"))
    var directory: String

    func run() throws {
        try Self.generate(directory: directory, figures: nil)
    }

    /// Runs `PYTHON -m report DIR` from the Experiments folder of this checkout. PYTHON is
    /// $LOCKLAB_PYTHON if set, else the checkout's own virtual environment (`.venv`, made by
    /// `make setup`) if there is one, else `python3` on the PATH.
    static func generate(directory: String, figures: [String]?) throws {
        guard let experiments = findExperimentsFolder() else {
            throw LabError.io("cannot find Experiments/report (set LOCKLAB_EXPERIMENTS to the Experiments folder)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let venv = URL(fileURLWithPath: experiments).deletingLastPathComponent().appendingPathComponent(".venv/bin/python3").path
        let python = ProcessInfo.processInfo.environment["LOCKLAB_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (FileManager.default.isExecutableFile(atPath: venv) ? venv : "python3")
        var arguments = [python, "-m", "report", URL(fileURLWithPath: directory).path]
        if let figures { arguments += ["--figures", figures.joined(separator: ",")] }
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: experiments)
        fflush(stdout) // our buffered lines first, then the generator's
        try process.run()
        process.waitUntilExit()
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
