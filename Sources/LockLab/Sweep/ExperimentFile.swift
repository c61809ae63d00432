// Experiment files (YAML, read with Yams): a matrix of locks x thread counts x workloads x
// placements, repeats, duration, warm-up, seed, and the figures to draw. Thread counts may be written
// relative to the machine so one file serves a 2-core laptop and a 4-socket server:
//   8            a number
//   all          every CPU of the topology;  per-node: the CPUs of one node
//   2x           twice the CPUs (oversubscription)
//   1..all       every count from 1 to all;  "1..all step node": 1, then every multiple of a node's
//                CPUs up to all;  "1..16 step 4": 1, 4, 8, 12, 16 (the ends are always included)
// Every error names the file and the field, on one line.
//
//   name: quick
//   locks: [all]                   # or [mcs, "cna:threshold=1000"]
//   threads: ["1..all"]
//   placements: [compact]          # compact | scatter | os (unpinned) | "cpus:0,2"
//   repeats: 3
//   duration_s: 0.5
//   warmup_s: 0.2
//   seed: 42
//   virtual_nodes: 2               # optional: always split this machine into 2 nodes
//   min_nodes: 2                   # optional: split into 2 virtual nodes only if the machine has fewer
//   mem_node: local                # local | interleave | N
//   sample_every: 64
//   workload:
//     name: [micro, "hashtable:read-ratio=90"]   # optional, default micro: workload specs
//     cs_lines: [1]                # each a number or a list: the matrix takes every combination
//                                  # (cs_lines and cs_ns apply to micro only)
//     cs_ns: [0]
//     ncs_ns: [0, 100]
//     ncs_random: false
//   report:
//     figures: [throughput, relative, fairness, latency_p99, handover, cpu_per_mop]
//     panels: family               # family (default) | none | [[mcs, cna], [tas, ticket]]
//     baseline: mcs                # the relative figure's denominator (default mcs)

import Foundation

/// An error in an experiment file: the file, the field, what is wrong.
public struct ExperimentFileError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let field: String?
    public let message: String
    public var description: String {
        let text = field.map { "\(file): field '\($0)': \(message)" } ?? "\(file): \(message)"
        return Self.oneLine(text)
    }

    /// Values quoted from the file may hold newlines or other control characters (a string with
    /// `\n` in it): shown escaped, so that the error stays one line.
    static func oneLine(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
                    || scalar == "\u{2028}" || scalar == "\u{2029}" || scalar == "\u{85}" {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }
}

/// A thread count as written, resolved against a topology later.
public enum ThreadCountSpec: Sendable, Equatable, CustomStringConvertible {
    case count(Int)
    case all
    case perNode
    case timesCPUs(Int)
    indirect case range(from: ThreadCountSpec, to: ThreadCountSpec, step: ThreadCountSpec?)

    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let dots = t.range(of: "..") {
            let from = try ThreadCountSpec(parsing: String(t[..<dots.lowerBound]))
            var rest = String(t[dots.upperBound...])
            var step: ThreadCountSpec? = nil
            if let s = rest.range(of: " step ") {
                step = try ThreadCountSpec(parsing: String(rest[s.upperBound...]).replacingOccurrences(of: "node", with: "per-node"))
                rest = String(rest[..<s.lowerBound])
            }
            let to = try ThreadCountSpec(parsing: rest)
            if case .range = from { throw LabError.badValue(flag: "threads", value: text, accepted: "A..B [step S]") }
            self = .range(from: from, to: to, step: step)
        } else if t == "all" {
            self = .all
        } else if t == "per-node" {
            self = .perNode
        } else if t.hasSuffix("x"), let k = Int(t.dropLast()), k >= 1, k <= Limits.maxThreads {
            self = .timesCPUs(k)
        } else if let n = Int(t), n >= 1, n <= Limits.maxThreads {
            self = .count(n)
        } else {
            throw LabError.badValue(flag: "threads", value: text,
                                    accepted: "N or Kx (1...\(Limits.maxThreads)), 'all', 'per-node' or a range 'A..B [step S|node]'")
        }
    }

    /// Parses a comma-separated list (`--threads 1,2,all`, `"1..all step node"`): the one grammar
    /// of `run`, `plan` and experiment files. Errors name `flag`.
    public static func parseList(_ text: String, flag: String) throws -> [ThreadCountSpec] {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if items.isEmpty { throw LabError.badValue(flag: flag, value: text, accepted: "at least one thread count") }
        return try items.map { item in
            do { return try ThreadCountSpec(parsing: item) } catch let LabError.badValue(_, value, accepted) {
                throw LabError.badValue(flag: flag, value: value, accepted: accepted)
            }
        }
    }

    public var description: String {
        switch self {
        case let .count(n): return "\(n)"
        case .all: return "all"
        case .perNode: return "per-node"
        case let .timesCPUs(k): return "\(k)x"
        case let .range(a, b, s): return "\(a)..\(b)" + (s.map { " step \($0)" } ?? "")
        }
    }

    /// The thread counts on a machine with `cpus` CPUs in `nodes` nodes.
    public func resolve(cpus: Int, nodes: Int) -> [Int] {
        let perNode = max(1, cpus / max(1, nodes))
        // Values above the thread limit are clamped to just above it (the session then refuses
        // them), so that a range never expands to more than the limit's worth of counts.
        func one(_ s: ThreadCountSpec) -> Int { min(unclamped(s), Limits.maxThreads + 1) }
        func unclamped(_ s: ThreadCountSpec) -> Int {
            switch s {
            case let .count(n): return n
            case .all: return cpus
            case .perNode: return perNode
            case let .timesCPUs(k):
                let (product, overflow) = k.multipliedReportingOverflow(by: cpus)
                return overflow ? Int.max : product
            case .range: return 1
            }
        }
        guard case let .range(from, to, step) = self else { return [one(self)] }
        let a = one(from), b = one(to), s = max(1, step.map(one) ?? 1)
        guard a <= b else { return [] }
        var out = [a]
        var k = (a / s + 1) * s
        while k < b { out.append(k); k += s }
        if b != a { out.append(b) }
        return out
    }
}

/// An experiment as read from its file.
public struct Experiment: Sendable {
    public var file: String
    public var name: String
    public var description: String
    public var locks: [LockSpec]
    public var threads: [ThreadCountSpec]
    public var placements: [Placement]
    public var repeats: Int
    public var durationSeconds: Double
    public var warmupSeconds: Double
    public var seed: UInt64
    public var virtualNodes: Int?
    /// Fewer real nodes than this: split the machine into this many virtual nodes.
    public var minNodes: Int?
    public var memory: MemoryPolicy
    public var sampleEvery: Int
    public var stallTimeoutSeconds: Double
    public var workloads: [WorkloadSpec]
    public var figures: [String]
    /// How the report groups locks into panels: "family", "none", or a JSON list of lock lists.
    public var panels: String? = nil
    /// The report's relative-figure baseline lock (nil: the generator's default, mcs).
    public var baseline: String? = nil

    /// The thread count the read-mostly figures are drawn at (nil: the generator's default, the
    /// largest count that is not oversubscribed).
    public var readThreads: Int? = nil

    /// The report's figures (Experiments/report/README.md); `read_ratio` and `read_update` are drawn
    /// only for runs with reads (a `read-ratio` workload option at two values or more).
    public static let knownFigures = ["throughput", "relative", "fairness", "latency_p99", "handover", "cpu_per_mop",
                                      "read_ratio", "read_update"]
    static let topKeys = ["name", "description", "locks", "threads", "placements", "repeats", "duration_s", "warmup_s",
                          "seed", "virtual_nodes", "min_nodes", "mem_node", "sample_every", "stall_timeout_s", "workload", "report"]
    static let workloadKeys = ["name", "cs_lines", "cs_ns", "ncs_ns", "ncs_random"]
    static let reportKeys = ["figures", "panels", "baseline", "read_threads"]

    /// Reads and checks an experiment file. Every problem is an `ExperimentFileError`.
    public static func load(path: String) throws -> Experiment {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ExperimentFileError(file: path, field: nil, message: "cannot read the file")
        }
        return try parse(data: data, file: path)
    }

    /// Checks the bytes of an experiment file. Every problem is an `ExperimentFileError`.
    public static func parse(data: Data, file: String) throws -> Experiment {
        guard let text = String(data: data, encoding: .utf8) else {
            throw ExperimentFileError(file: file, field: nil, message: "is not UTF-8 text")
        }
        return try parse(text, file: file)
    }

    public static func parse(_ text: String, file: String) throws -> Experiment {
        let table: ConfigTable
        do {
            table = try ConfigParser.parse(text)
        } catch let e as ConfigParseError {
            let position = e.line > 0 ? " at line \(e.line), column \(e.column)" : ""
            throw ExperimentFileError(file: file, field: nil, message: "not valid YAML\(position): \(e.message)")
        }
        let reader = FieldReader(file: file)
        try reader.rejectUnknown(table, known: topKeys, prefix: "")

        let name = try reader.string(table, "name") ?? ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let description = try reader.string(table, "description") ?? ""
        let lockTexts = try reader.strings(table, "locks", required: true) ?? []
        var locks: [LockSpec] = []
        for t in lockTexts {
            do { locks += try LockSpec.parseList(t) } catch let e as LockError {
                throw ExperimentFileError(file: file, field: "locks", message: e.description)
            }
        }
        let threadItems = try reader.stringsOrInts(table, "threads", required: true)
        var threads: [ThreadCountSpec] = []
        for t in threadItems {
            do { threads.append(try ThreadCountSpec(parsing: t)) } catch let e as LabError {
                throw ExperimentFileError(file: file, field: "threads", message: e.description)
            }
        }
        var placements: [Placement] = []
        for p in try reader.strings(table, "placements", required: false) ?? ["compact"] {
            do { placements.append(try Placement(parsing: p)) } catch {
                throw ExperimentFileError(file: file, field: "placements", message: "\(error)")
            }
        }
        let repeats = try reader.int(table, "repeats", range: 1...Limits.maxRepeats) ?? 1
        let duration = try reader.double(table, "duration_s", range: 0.001...86_400) ?? 1
        let warmup = try reader.double(table, "warmup_s", range: 0...86_400) ?? 0.2
        let seed = try reader.int(table, "seed", range: 0...Int.max) ?? 1
        let virtualNodes = try reader.int(table, "virtual_nodes", range: 1...4096)
        let minNodes = try reader.int(table, "min_nodes", range: 1...4096)
        if virtualNodes != nil, minNodes != nil {
            throw ExperimentFileError(file: file, field: "min_nodes", message: "give virtual_nodes or min_nodes, not both")
        }
        // A node number or a word: `mem_node: 0` (as README writes it) and `mem_node: "0"` alike.
        let memText = try table["mem_node"].map { try reader.numberOrWord($0, field: "mem_node") } ?? "local"
        let memory: MemoryPolicy
        do { memory = try MemoryPolicy(parsing: memText) } catch {
            throw ExperimentFileError(file: file, field: "mem_node", message: "'\(memText)' is not valid; expected a node number, 'local' or 'interleave'")
        }
        let sampleEvery = try reader.int(table, "sample_every", range: 0...Int.max) ?? Harness.defaultSampleEvery
        let stall = try reader.double(table, "stall_timeout_s", range: 0.1...86_400) ?? 30

        var workloads: [WorkloadSpec] = [.micro(.init())]
        if let w = table["workload"] {
            guard let wt = w.table else { throw ExperimentFileError(file: file, field: "workload", message: "expected a mapping (workload: with indented fields)") }
            try reader.rejectUnknown(wt, known: workloadKeys, prefix: "workload.")
            let names = try reader.strings(wt, "name", required: false, field: "workload.name") ?? ["micro"]
            let csLines = try reader.intList(wt, "cs_lines", field: "workload.cs_lines", range: 0...65_536) ?? [1]
            let csNs = try reader.intList(wt, "cs_ns", field: "workload.cs_ns", range: 0...1_000_000_000) ?? [0]
            let ncsNs = try reader.intList(wt, "ncs_ns", field: "workload.ncs_ns", range: 0...1_000_000_000) ?? [0]
            let random = try reader.bool(wt, "ncs_random", field: "workload.ncs_random") ?? false
            // The cross product is built here: refuse one too large to build before building it.
            let combinations = csLines.count.multipliedReportingOverflow(by: csNs.count)
            let total = combinations.partialValue.multipliedReportingOverflow(by: ncsNs.count)
            let withNames = total.partialValue.multipliedReportingOverflow(by: max(1, names.count))
            if combinations.overflow || total.overflow || withNames.overflow || withNames.partialValue > Limits.maxWorkloads {
                throw ExperimentFileError(file: file, field: "workload",
                                          message: "name x cs_lines x cs_ns x ncs_ns give more than \(Limits.maxWorkloads) workloads; split the file")
            }
            workloads = []
            for name in names {
                // cs_lines and cs_ns multiply the micro runs only; ncs_* every workload.
                let micro = name.split(separator: ":").first == "micro"
                for l in micro ? csLines : [1] { for c in micro ? csNs : [0] { for n in ncsNs {
                    let defaults = ["cs-lines": l, "cs-ns": c, "ncs-ns": n, "ncs-random": random ? 1 : 0]
                    do {
                        workloads.append(try WorkloadSpec(parsing: name, defaults: defaults, flag: "workload.name"))
                    } catch let e as LabError {
                        throw ExperimentFileError(file: file, field: "workload.name", message: e.description)
                    }
                } } }
            }
        }
        var figures = knownFigures
        var panels: String? = nil
        var baseline: String? = nil
        if let r = table["report"] {
            guard let rt = r.table else { throw ExperimentFileError(file: file, field: "report", message: "expected a mapping (report: with indented fields)") }
            try reader.rejectUnknown(rt, known: reportKeys, prefix: "report.")
            if let f = try reader.strings(rt, "figures", required: false, field: "report.figures") {
                for name in f where !knownFigures.contains(name) {
                    throw ExperimentFileError(file: file, field: "report.figures",
                                              message: "unknown figure '\(name)'; known: \(knownFigures.joined(separator: ", "))")
                }
                figures = f
            }
            if let p = rt["panels"] {
                panels = try reportPanels(p, file: file)
            }
            if let b = rt["baseline"] {
                guard let name = b.text, (try? LockSpec(parsing: name)) != nil else {
                    throw ExperimentFileError(file: file, field: "report.baseline",
                                              message: b.text.map { "unknown lock '\($0)' (see `locklab list`)" }
                                                ?? "expected a lock name, got \(b.typeName)")
                }
                baseline = name
            }
        }
        var readThreads: Int? = nil
        if let rt = table["report"]?.table, rt["read_threads"] != nil {
            readThreads = try reader.int(rt, "read_threads", range: 1...4096, field: "report.read_threads")
        }
        if locks.allSatisfy({ ($0.entry.descriptor.maxThreads ?? .max) < 2 }) && threads.allSatisfy({ $0 != .count(1) }) {
            throw ExperimentFileError(file: file, field: "locks", message: "every lock listed runs at one thread only, but threads never is 1")
        }
        var experiment = Experiment(
            file: file, name: name, description: description, locks: locks, threads: threads,
            placements: placements, repeats: repeats, durationSeconds: duration, warmupSeconds: warmup,
            seed: UInt64(seed), virtualNodes: virtualNodes, minNodes: minNodes, memory: memory, sampleEvery: sampleEvery,
            stallTimeoutSeconds: stall, workloads: workloads, figures: figures)
        experiment.panels = panels
        experiment.baseline = baseline
        experiment.readThreads = readThreads
        return experiment
    }

    /// `report.panels`: `family`, `none`, or a list of lists of lock names, returned as the report
    /// generator's `--panels` argument (a JSON list of lock lists).
    static func reportPanels(_ value: ConfigValue, file: String) throws -> String {
        if let s = value.text, s == "family" || s == "none" { return s }
        let bad = ExperimentFileError(file: file, field: "report.panels",
                                      message: "expected family, none or a list of lock lists ([[mcs, cna], [tas]])")
        guard let groups = value.array, !groups.isEmpty else { throw bad }
        var json: [String] = []
        for g in groups {
            guard let members = g.array, !members.isEmpty else { throw bad }
            var names: [String] = []
            for m in members {
                guard let name = m.text, (try? LockSpec(parsing: name)) != nil else {
                    throw ExperimentFileError(file: file, field: "report.panels",
                                              message: "unknown lock \(m.text.map { "'\($0)'" } ?? m.typeName) (see `locklab list`)")
                }
                names.append("\"" + name + "\"")
            }
            json.append("[" + names.joined(separator: ", ") + "]")
        }
        return "[" + json.joined(separator: ", ") + "]"
    }

    /// This machine as the experiment wants it: `virtual_nodes` always, `min_nodes` when the
    /// machine has fewer real nodes; `override` (the command line's --virtual-nodes) wins.
    public func topology(virtualNodesOverride override: Int? = nil) throws -> Topology {
        if let n = override ?? virtualNodes { return try Topology.load(.thisMachine, virtualNodes: n) }
        let machine = try Topology.load(.thisMachine)
        if let minNodes, machine.nodeCount < minNodes {
            do { return try Topology.load(.thisMachine, virtualNodes: minNodes) } catch {
                throw ExperimentFileError(file: file, field: "min_nodes", message: "\(error)")
            }
        }
        return machine
    }

    /// Thread counts on this topology, sorted, without duplicates.
    public func threadCounts(on topology: Topology) -> [Int] {
        let cpus = topology.cpus.count
        return Array(Set(threads.flatMap { $0.resolve(cpus: cpus, nodes: topology.nodeCount) })).sorted()
    }

    /// The run matrix this experiment runs on `topology`: its runs shuffled with the seed.
    public func matrix(on topology: Topology) throws -> RunMatrix {
        let counts = threadCounts(on: topology)
        if counts.isEmpty {
            throw ExperimentFileError(file: file, field: "threads", message: "gives no thread count on this machine (\(topology.cpus.count) CPUs)")
        }
        let s = RunMatrix(locks: locks, threadCounts: counts, repeats: repeats, workloads: workloads,
                                placements: placements, shuffleSeed: seed, memory: memory, warmupSeconds: warmupSeconds,
                                durationSeconds: durationSeconds, sampleEvery: sampleEvery, seed: seed,
                                stallTimeoutSeconds: stallTimeoutSeconds, experiment: name)
        do { try s.validate(on: topology) } catch let e as LabError {
            throw ExperimentFileError(file: file, field: nil, message: e.description)
        } catch let e as LockError {
            throw ExperimentFileError(file: file, field: "locks", message: e.description)
        }
        return s
    }
}

/// Typed access to experiment-file fields with one-line errors naming the field.
struct FieldReader {
    let file: String

    func fail(_ field: String, _ message: String) -> ExperimentFileError {
        ExperimentFileError(file: file, field: field, message: message)
    }

    func rejectUnknown(_ table: ConfigTable, known: [String], prefix: String) throws {
        for key in table.keys.sorted() where !known.contains(key) {
            throw fail(prefix + key, "unknown field; known fields: \(known.map { prefix + $0 }.joined(separator: ", "))")
        }
    }

    func describe(_ v: ConfigValue) -> String {
        v.typeName
    }

    /// A string field: the scalar's text exactly as written (`name: 010` is "010", `yes` is "yes").
    func string(_ t: ConfigTable, _ key: String, field: String? = nil) throws -> String? {
        guard let v = t[key] else { return nil }
        guard let s = v.text else { throw fail(field ?? key, "expected a string, found \(describe(v))") }
        return s
    }

    /// One integer from a scalar, or the field's one-line error.
    func integer(_ v: ConfigValue, field: String, range: ClosedRange<Int>) throws -> Int {
        guard let text = v.text else { throw fail(field, "expected an integer, found \(describe(v))") }
        switch ScalarText.integer(text) {
        case let .value(n):
            guard range.contains(n) else { throw fail(field, "\(n) is out of range \(rangeText(range))") }
            return n
        case let .refused(why): throw fail(field, "expected an integer: \(why)")
        case .notANumber: throw fail(field, "expected an integer, found \(describe(v))")
        }
    }

    func int(_ t: ConfigTable, _ key: String, range: ClosedRange<Int>, field: String? = nil) throws -> Int? {
        guard let v = t[key] else { return nil }
        return try integer(v, field: field ?? key, range: range)
    }

    func double(_ t: ConfigTable, _ key: String, range: ClosedRange<Double>) throws -> Double? {
        guard let v = t[key] else { return nil }
        guard let text = v.text else { throw fail(key, "expected a number, found \(describe(v))") }
        let x: Double
        switch ScalarText.number(text) {
        case let .value(value): x = value
        case let .refused(why): throw fail(key, "expected a number: \(why)")
        case .notANumber: throw fail(key, "expected a number, found \(describe(v))")
        }
        guard range.contains(x) else { throw fail(key, "\(text) is out of range \(range.lowerBound)...\(range.upperBound)") }
        return x
    }

    func bool(_ t: ConfigTable, _ key: String, field: String) throws -> Bool? {
        guard let v = t[key] else { return nil }
        guard let text = v.text, let b = ScalarText.boolean(text) else {
            throw fail(field, "expected true or false (or yes/no, on/off), found \(describe(v))")
        }
        return b
    }

    func strings(_ t: ConfigTable, _ key: String, required: Bool, default defaultValue: [String]? = nil,
                 field: String? = nil) throws -> [String]? {
        let name = field ?? key
        guard let v = t[key] else {
            if required { throw fail(name, "is required") }
            return defaultValue
        }
        if let s = v.text { return [s] }
        guard let a = v.array else { throw fail(name, "expected a string or a list of strings, found \(describe(v))") }
        var out: [String] = []
        for item in a {
            guard let s = item.text else { throw fail(name, "expected strings in the list, found \(describe(item))") }
            out.append(s)
        }
        if out.isEmpty { throw fail(name, "is an empty list") }
        return out
    }

    /// A value that is a number or a word (a node number or `interleave`, a thread count or `all`):
    /// numbers normalised as `integer` reads them (`010` -> "10"), words as written, and a number
    /// a person could misread refused. Text with ".." (a thread range) is passed on as written.
    func numberOrWord(_ v: ConfigValue, field: String) throws -> String {
        guard let text = v.text else { throw fail(field, "expected a number or a word, found \(describe(v))") }
        if text.contains("..") { return text }
        switch ScalarText.integer(text) {
        case let .value(n): return "\(n)"
        case let .refused(why): throw fail(field, why)
        case .notANumber: return text
        }
    }

    func stringsOrInts(_ t: ConfigTable, _ key: String, required: Bool) throws -> [String] {
        guard let v = t[key] else {
            if required { throw fail(key, "is required") }
            return []
        }
        if let a = v.array {
            let out = try a.map { try numberOrWord($0, field: key) }
            if out.isEmpty { throw fail(key, "is an empty list") }
            return out
        }
        return [try numberOrWord(v, field: key)]
    }

    func intList(_ t: ConfigTable, _ key: String, field: String, range: ClosedRange<Int>) throws -> [Int]? {
        guard let v = t[key] else { return nil }
        var values: [Int] = []
        if let a = v.array {
            for item in a { values.append(try integer(item, field: field, range: range)) }
        } else if v.text != nil {
            values = [try integer(v, field: field, range: range)]
        } else {
            throw fail(field, "expected an integer or a list of integers, found \(describe(v))")
        }
        if values.isEmpty { throw fail(field, "is an empty list") }
        return values
    }

    func rangeText(_ r: ClosedRange<Int>) -> String {
        r.upperBound == Int.max ? ">= \(r.lowerBound)" : "\(r.lowerBound)...\(r.upperBound)"
    }
}
