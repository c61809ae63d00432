// `locklab overhead`: the harness's own cost against a bare C loop around the same lock.

import ArgumentParser
import Foundation
import LockLab

struct OverheadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "overhead",
        abstract: "Compare the harness with a bare C loop around ck's fas lock at 1 and 2 threads (ns/op, medians).")

    @Option(name: .customLong("repeat"), parsing: .unconditional, help: ArgumentHelp("Interleaved repetitions.", valueName: "R"))
    var repeats: Int = 5

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds per measurement.", valueName: "s"))
    var seconds: Double = 0.3

    @Option(parsing: .unconditional, help: ArgumentHelp("CPU of the first thread; the second takes the next CPU (default: the first CPU this process may use).", valueName: "N"))
    var cpu: Int?

    func run() throws {
        guard (1...1000).contains(repeats) else {
            throw LabError.badValue(flag: "--repeat", value: "\(repeats)", accepted: "a count in 1...1000")
        }
        guard seconds.isFinite, seconds > 0, seconds <= 3600 else {
            throw LabError.badValue(flag: "--seconds", value: "\(seconds)", accepted: "seconds in (0, 3600]")
        }
        // The CPUs this process may use (its affinity mask and cpuset), not every online CPU.
        let machine = try Topology.load()
        let cpu = self.cpu ?? machine.cpus[0].cpu
        guard machine.info(cpu: cpu) != nil else {
            let allowedText = machine.cpus.map { String($0.cpu) }.joined(separator: ",")
            throw LabError.badValue(flag: "--cpu", value: "\(cpu)",
                                    accepted: "a CPU this process may use (\(allowedText)\(machine.restriction != nil ? ", restricted by its affinity mask or cpuset" : ""))")
        }
        // The second thread takes the next CPU this process may use (round to the first).
        let allowed = machine.cpus.map(\.cpu)
        let second = allowed.first { $0 > cpu } ?? allowed[0]
        let report = try Overhead.measure(repeats: repeats, seconds: seconds, cpus: [cpu, second])
        // Speed relative to the bare loop at the same thread count: 1.0 is as fast, 0.95 is 5% slower.
        var bare: [Int: Double] = [:]
        for m in report.medians where m.label.hasPrefix("bare") { bare[m.threads] = m.nanosecondsPerOp }
        print(textTable(header: ["loop", "thr", "ns/op", "speed vs bare"], rows: report.medians.map {
            [$0.label, "\($0.threads)", String(format: "%.2f", $0.nanosecondsPerOp),
             String(format: "%.3fx", (bare[$0.threads] ?? $0.nanosecondsPerOp) / $0.nanosecondsPerOp)]
        }))
    }
}
