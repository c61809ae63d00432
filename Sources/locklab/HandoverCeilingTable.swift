// The handover ceiling under `locklab run`'s table: each lock's two-thread throughput (and handover
// rate) as a fraction of what the probe's line transfers allow (Sources/LockLab/Probe/HandoverCeiling.swift).

import Foundation
import LockLab

/// One two-thread run, as the ceiling table needs it.
struct TwoThreadRun {
    let label: String
    let lock: String
    let opsPerSecond: Double
    let handoversPerSecond: Double
}

enum HandoverCeilingTable {
    /// The coherence.csv to use: `explicit`, or one that belongs with `out` (DIR/coherence.csv or
    /// DIR/../coherence/coherence.csv) of this machine. Returns the path and a note, or nil.
    static func locate(explicit: String?, out: String, machine: MachineInfo) throws -> (path: String, note: String?)? {
        let path: String
        if let explicit {
            _ = try CoherenceFiles.read(path: explicit)  // one clear line now, not after the runs
            path = explicit
        } else if let found = HandoverCeiling.findCoherenceFile(near: out) {
            path = found
        } else {
            return nil
        }
        let manifestPath = ((path as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent(CoherenceFiles.manifestName)
        if let manifest = CoherenceManifest.read(path: manifestPath),
           manifest.machine.host != machine.host || manifest.machine.cpuModel != machine.cpuModel {
            let other = "\(manifest.machine.host) (\(manifest.machine.cpuModel))"
            if explicit == nil { return nil }  // another machine's file found by convention: ignore it
            return (path, "note: \(path) was measured on \(other), not this machine")
        }
        return (path, nil)
    }

    /// Prints, for every lock run at two threads, median throughput and handover rate over the
    /// ceiling. Nothing when no run had two threads.
    static func print(runs: [TwoThreadRun], coherencePath: String, topology: Topology, placement: Placement,
                      workload: MicrobenchmarkParameters) throws {
        guard !runs.isEmpty else { return }
        let rows = try CoherenceFiles.read(path: coherencePath)
        let plan = try topology.plan(threads: 2, placement: placement)
        // Unpinned threads (placement os) run on no fixed pair of CPUs: no ceiling to set them against.
        guard plan.threads.count == 2, let a = plan.threads[0].cpu, let b = plan.threads[1].cpu else { return }
        let distance = topology.distance(cpu: a, cpu: b)
        var order: [String] = []
        var byLabel: [String: [TwoThreadRun]] = [:]
        for r in runs {
            if byLabel[r.label] == nil { order.append(r.label) }
            byLabel[r.label, default: []].append(r)
        }
        var table: [[String]] = []
        var source = ""
        var overCeiling: [String] = []
        for label in order {
            let group = byLabel[label]!
            let ops = median(group.map(\.opsPerSecond)), handovers = median(group.map(\.handoversPerSecond))
            guard let ceiling = HandoverCeiling.make(lock: group[0].lock, csLines: workload.csLines,
                                                     csNanoseconds: workload.csNanoseconds, rows: rows,
                                                     cpus: (a, b), distance: distance) else {
                table.append([label, "-", "-", String(format: "%.3f", ops / 1e6), "-", "-"])
                continue
            }
            source = "store to M " + String(format: "%.1f", ceiling.transferNanoseconds) + " ns, \(ceiling.source)"
            let c = ceiling.handoversPerSecond
            if handovers / c > 1.05 { overCeiling.append(label) }
            table.append([label, "\(ceiling.linesPerHandover)", String(format: "%.3f", c / 1e6),
                          String(format: "%.3f", ops / 1e6), String(format: "%.2f", ops / c),
                          String(format: "%.2f", handovers / c)])
        }
        Swift.print("\nhandover ceiling at 2 threads (cpus \(a),\(b); \(source.isEmpty ? "no transfer latency for this pair" : source); \(coherencePath)):")
        Swift.print(textTable(header: ["lock", "lines/handover", "ceiling M/s", "median Mops/s", "throughput/ceiling", "handovers/ceiling"],
                              rows: table))
        Swift.print("lines/handover = the lock's own lines + cs-lines (at least 1: the harness's record); '-': no model (see README, the coherence probe)")
        if !overCeiling.isEmpty {
            Swift.print("note: \(overCeiling.joined(separator: ", ")) handed over faster than the ceiling allows: \(coherencePath) does not describe the CPUs of this run (another machine or boot?); measure it again with `locklab coherence`")
        }
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
