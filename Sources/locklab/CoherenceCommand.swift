// `locklab coherence`: what moving a cache line between two CPUs costs here, per coherence state
// and operation, and the handover ceiling it puts on a two-thread lock (Sources/LockLab/Probe).

import ArgumentParser
import Foundation
import LockLab

struct CoherenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coherence",
        abstract: "Measure cache-line transfer latency between CPUs per state (M, E, S, I) and operation.",
        discussion: """
            Two pinned threads: cpu_a puts a line into a state, cpu_b times one load, store, CAS,
            fetch-add or exchange on it with the cycle counter (overhead measured and subtracted).
            --all-pairs (the default) measures every state and operation on one pair per distance
            class (smt, same-l3, same-node, virtual, other-node, other-package) and M load/store on
            every other ordered pair (the heat map). --out writes coherence.csv, handover_lines.csv
            and manifest.json; `locklab run` and the report then show the handover ceiling.
            """)

    @Option(help: ArgumentHelp("One pair A,B: A puts the line into the state, B times the operation.", valueName: "A,B"))
    var cpus: String?

    @Flag(name: .customLong("all-pairs"), help: "One pair per distance class (every state and operation) and every ordered pair for the heat map (the default).")
    var allPairs = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Repetitions per state and operation (heat-map pairs: a quarter, at least 100).", valueName: "N"))
    var reps: Int = CoherenceProbe.defaultReps

    @Option(help: ArgumentHelp("Write coherence.csv, handover_lines.csv and manifest.json here (replacing a previous probe's).", valueName: "DIR"))
    var out: String?

    @Flag(name: .customLong("dry-run"), help: "Print the pairs and their distance classes and stop (works on --xml and --synthetic topologies).")
    var dryRun = false

    @OptionGroup var topology: TopologyOptions

    func run() throws {
        if cpus != nil, allPairs {
            throw LabError.badValue(flag: "--cpus", value: cpus!, accepted: "either --cpus A,B or --all-pairs, not both")
        }
        guard (1...CoherenceProbe.maxReps).contains(reps) else {
            throw LabError.badValue(flag: "--reps", value: "\(reps)", accepted: "a count in 1...\(CoherenceProbe.maxReps)")
        }
        let machine = try topology.load()
        let plan = try CoherencePlan.make(on: machine, cpus: cpus)
        if dryRun {
            printPlan(plan, machine)
            return
        }
        guard machine.isThisSystem else {
            throw LabError.impossible("coherence: cannot probe a loaded topology (\(machine.sourceDescription)); add --dry-run to see its pairs")
        }
        let heatReps = CoherencePlan.heatMapReps(reps)
        print("locklab coherence: \(plural(plan.matrixPairs.count, "pair")) x 20 (state, op) x \(reps) reps"
              + (plan.heatMapPairs.isEmpty ? "" : ", \(plural(plan.heatMapPairs.count, "heat-map pair")) x 2 x \(heatReps) reps")
              + " on \(machine.summary)")
        let utcStart = Manifest.utcNow()
        let loadAverage = CoherenceManifest.loadAverage()
        // Before anything is written: rewriting a committed coherence.csv must not make the build
        // look locally modified ("-dirty") in its own manifest.
        let machineInfo = MachineInfo.current(), build = BuildInfo.current()
        let result = try CoherenceSurvey.run(plan, reps: reps) { print("  \($0)") }

        for pair in plan.matrixPairs {
            let rows = result.measurements.filter { $0.cpuA == pair.owner && $0.cpuB == pair.timer }
            printMatrix(rows, pair: pair, overhead: result.overheadByCPU[pair.timer])
        }
        if !plan.heatMapPairs.isEmpty, machine.cpus.count <= 32 { printHeatMap(result.measurements, machine) }
        printCeilings(result.measurements, machine)
        print(String(format: "probe took %.1f s", result.elapsedSeconds))

        if let out {
            try CoherenceFiles.write(result.measurements, to: out)
            var pairs = plan.matrixPairs.map {
                CoherenceManifest.Pair(cpuA: $0.owner, cpuB: $0.timer, distance: $0.distance.rawValue, measured: "matrix")
            }
            pairs += plan.heatMapPairs.map {
                CoherenceManifest.Pair(cpuA: $0.owner, cpuB: $0.timer, distance: $0.distance.rawValue, measured: "heat map")
            }
            let method = CoherenceManifest.Method(
                description: CoherenceManifest.methodText, reps: reps, heatMapReps: plan.heatMapPairs.isEmpty ? 0 : heatReps,
                lines: CoherenceProbe.lineCount, lineSpacingBytes: 4096, overheadSamples: CoherenceProbe.overheadSamples,
                overheadSubtracted: "the minimum of the empty timed section on the timing CPU, from every sample (floored at 0)",
                timerOverheadMinCycles: Dictionary(uniqueKeysWithValues: result.overheadByCPU.map { ("\($0.key)", $0.value.minCycles) }),
                timerOverheadMedianCycles: Dictionary(uniqueKeysWithValues: result.overheadByCPU.map { ("\($0.key)", $0.value.medianCycles) }),
                cycles: "cycle-counter ticks (x86: invariant TSC at the nominal frequency, not core clocks); ns = ticks / machine.cycles_per_ns")
            let manifest = CoherenceManifest(
                machine: machineInfo, build: build, topology: machine.summary, method: method,
                pairs: pairs, command: CommandLine.arguments.joined(separator: " "), utcStart: utcStart,
                elapsedSeconds: (result.elapsedSeconds * 100).rounded() / 100, loadAverageAtStart: loadAverage)
            try manifest.write(to: out)
            print("results: \(out)/\(CoherenceFiles.csvName), \(out)/\(CoherenceFiles.linesName), \(out)/\(CoherenceFiles.manifestName)")
        }
    }

    private func printPlan(_ plan: CoherencePlan, _ machine: Topology) {
        print("coherence plan on \(machine.summary)")
        print(textTable(header: ["cpu_a", "cpu_b", "distance", "measured"], rows: plan.matrixPairs.map {
            ["\($0.owner)", "\($0.timer)", $0.distance.rawValue, "every state and operation"]
        }))
        if !plan.heatMapPairs.isEmpty {
            var counts: [DistanceClass: Int] = [:]
            for p in plan.heatMapPairs { counts[p.distance, default: 0] += 1 }
            let text = counts.keys.sorted().map { "\(counts[$0]!) \($0.rawValue)" }.joined(separator: ", ")
            print("heat map: \(plural(plan.heatMapPairs.count, "more ordered pair")) (M load and store): \(text)")
        }
    }

    private func printMatrix(_ rows: [CoherenceMeasurement], pair: ProbePair, overhead: TimerOverhead?) {
        print("\ncpu \(pair.owner) -> cpu \(pair.timer) (\(pair.distance.rawValue)): median ns (min-p99)")
        let ops = CoherenceOperation.allCases
        let table = CoherenceState.allCases.map { state -> [String] in
            [state.rawValue] + ops.map { op in
                guard let m = rows.first(where: { $0.state == state && $0.operation == op }) else { return "-" }
                return String(format: "%.1f (%.0f-%.0f)", m.medianNanoseconds, m.minNanoseconds, m.p99Nanoseconds)
            }
        }
        print(textTable(header: ["state"] + ops.map(\.rawValue), rows: table))
        if let overhead {
            print("timer overhead on cpu \(pair.timer): min \(overhead.minCycles), median \(overhead.medianCycles) ticks; the min is subtracted from every sample")
        }
    }

    private func printHeatMap(_ rows: [CoherenceMeasurement], _ machine: Topology) {
        let loads = rows.filter { $0.state == .modified && $0.operation == .load }
        let cpus = machine.cpus.map(\.cpu)
        print("\nload from M, median ns (row: cpu_a stored, column: cpu_b loaded)")
        let table = cpus.map { a -> [String] in
            ["\(a)"] + cpus.map { b in
                guard a != b, let m = loads.first(where: { $0.cpuA == a && $0.cpuB == b }) else { return "-" }
                return String(format: "%.0f", m.medianNanoseconds)
            }
        }
        print(textTable(header: ["a\\b"] + cpus.map(String.init), rows: table))
    }

    /// The handover ceiling at two threads with `run`'s defaults (compact placement, cs-lines 1).
    private func printCeilings(_ rows: [CoherenceMeasurement], _ machine: Topology) {
        guard machine.cpus.count >= 2,
              let plan = try? machine.plan(threads: 2, placement: .compact), plan.threads.count == 2,
              let a = plan.threads[0].cpu, let b = plan.threads[1].cpu else { return }
        let distance = machine.distance(cpu: a, cpu: b)
        let locks = ["ck-fas", "ticket", "clh", "mcs"]
        let ceilings = locks.compactMap {
            HandoverCeiling.make(lock: $0, csLines: 1, csNanoseconds: 0, rows: rows, cpus: (a, b), distance: distance)
        }
        guard let first = ceilings.first else { return }
        print("\nhandover ceiling at 2 threads (compact: cpus \(a),\(b); store to M "
              + String(format: "%.1f", first.transferNanoseconds) + " ns, \(first.source); cs-lines 1):")
        print(textTable(header: ["lock", "lines/handover", "ceiling M handovers/s"], rows: ceilings.map {
            [$0.lock, "\($0.linesPerHandover)", String(format: "%.2f", $0.handoversPerSecond / 1e6)]
        }))
    }
}
