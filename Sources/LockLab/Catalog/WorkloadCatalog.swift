// The catalog of workloads: `--workload NAME[:KEY=VALUE...]` and the experiment files' `workload:`
// entry, resolved once into a kind and its options. `bind` builds the concrete workload and hands
// it to a `WorkloadBinder` (the catalog's executor entry): each (executor, workload) pair then
// runs its own specialised loop. A new workload is one file in Workloads/, one case here and its
// options; the validator then runs every executor on it with no new test code.

/// Something that runs with a concrete workload type (the catalog's executor entries).
public protocol WorkloadBinder {
    associatedtype Result
    func run<W: Workload>(_ workload: W) throws -> Result
}

/// Something that runs with a concrete RCU twin over flavour `Flavor` (the RCU entries).
public protocol RCUWorkloadBinder {
    associatedtype Flavor: RCUFlavor
    associatedtype Result
    func run<W: RCUWorkload>(_ workload: W) throws -> Result where W.Flavor == Flavor
}

/// The workloads the lab carries.
public enum WorkloadKind: String, Sendable, CaseIterable {
    case micro, counter, queue, stack, hashtable, list, pqueue, snapshot

    /// What `locklab list --workloads`-style help prints.
    public var summary: String {
        switch self {
        case .micro: return "the lock microbenchmark: cs-lines shared lines (the harness record's first), cs-ns inside"
        case .counter: return "fetch-and-add on one shared counter, returning the old value"
        case .queue: return "FIFO linked queue, enqueue/dequeue pairs from empty (Synch's queue benchmark)"
        case .stack: return "LIFO linked stack, push/pop pairs from empty (Synch's stack benchmark)"
        case .hashtable: return "chained hash table over `keys` keys, get/put/delete, read-ratio percent gets"
        case .list: return "sorted linked list over `keys` keys, contains/insert/delete, read-ratio percent contains"
        case .pqueue: return "binary min-heap prefilled with `prefill` keys, insert/delete-min pairs"
        case .snapshot: return "one object of `lines` lines read whole (torn reads fail the run) or rewritten whole, read-ratio percent reads"
        }
    }

    /// The structure the workload runs on: what a plan checks before it runs anything (the
    /// executors its reads may pair with, `ReadSharing.pairingRefusal`).
    public var structureType: any SequentialStructure.Type {
        switch self {
        case .micro: return MicroLines.self
        case .counter: return SharedCounter.self
        case .queue: return LinkedQueue.self
        case .stack: return LinkedStack.self
        case .hashtable: return ChainedHashTable.self
        case .list: return SortedLinkedList.self
        case .pqueue: return BinaryHeap.self
        case .snapshot: return SnapshotObject.self
        }
    }

    /// Whether the workload has an RCU twin (Workloads/RCU*.swift), the only structures an RCU
    /// executor runs on.
    public var hasRCUTwin: Bool { rcuStructureType != nil }

    /// The structure of the RCU twin, nil for a workload without one: what an RCU executor's
    /// reads run on instead of `structureType`.
    public var rcuStructureType: (any SequentialStructure.Type)? {
        switch self {
        case .snapshot: return RCUSnapshotObject.self
        case .hashtable: return RCUChainedHashTable.self
        case .list: return RCUSortedLinkedList.self
        case .micro, .counter, .queue, .stack, .pqueue: return nil
        }
    }

    /// The options it takes (every workload takes ncs-ns and ncs-random).
    public var options: [LockOptionSpec] {
        let outside = [
            LockOptionSpec("ncs-ns", default: 0, range: 0...1_000_000_000, help: "busy-wait between operations, ns"),
            LockOptionSpec("ncs-random", default: 0, range: 0...1, help: "1: draw each wait from [0, 2 x ncs-ns]"),
        ]
        switch self {
        case .micro:
            return [LockOptionSpec("cs-lines", default: 1, range: 0...65_536, help: "shared lines read-modify-written, the harness record's included"),
                    LockOptionSpec("cs-ns", default: 0, range: 0...1_000_000_000, help: "busy-wait inside, ns")] + outside
        case .counter, .queue, .stack:
            return outside
        case .hashtable:
            return [LockOptionSpec("keys", default: 1024, range: 1...(1 << 24), help: "key range"),
                    LockOptionSpec("read-ratio", default: 50, range: 0...100, help: "percent of operations that are gets")] + outside
        case .list:
            return [LockOptionSpec("keys", default: 256, range: 1...(1 << 20), help: "key range"),
                    LockOptionSpec("read-ratio", default: 50, range: 0...100, help: "percent of operations that are contains")] + outside
        case .pqueue:
            return [LockOptionSpec("keys", default: 1 << 20, range: 1...(1 << 40), help: "key range"),
                    LockOptionSpec("prefill", default: 1024, range: 0...(1 << 24), help: "keys in the heap at the start")] + outside
        case .snapshot:
            return [LockOptionSpec("lines", default: 1, range: 1...65_536, help: "64-byte lines in the object, read and written whole"),
                    LockOptionSpec("read-ratio", default: 90, range: 0...100, help: "percent of operations that are reads")] + outside
        }
    }
}

/// A workload as named on the command line or in an experiment file: `name[:key=value...]`.
public struct WorkloadSpec: Sendable, Hashable, CustomStringConvertible {
    public let kind: WorkloadKind
    /// Options given explicitly (sorted by key): they make the label.
    public let explicit: [String]
    /// Every option of the workload with its value (explicit, else from `defaults`, else its default).
    public let options: LockOptions

    public var name: String { kind.rawValue }
    /// The CSV's `workload` column: the name plus the explicit options, sorted.
    public var label: String { ([name] + explicit).joined(separator: ":") }
    public var description: String { label }

    public static func == (a: WorkloadSpec, b: WorkloadSpec) -> Bool { a.label == b.label && a.options == b.options }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(label)
        hasher.combine(options.csvText)
    }

    static let accepted = "NAME[:KEY=VALUE...] with NAME one of \(WorkloadKind.allCases.map(\.rawValue).joined(separator: ", "))"

    /// Parses `hashtable:keys=4096:read-ratio=90`. `defaults` gives values for options the text
    /// leaves out (the command line's --cs-lines and friends); keys the workload does not take are
    /// ignored there. Throws `LabError.badValue` naming `flag`: unknown workload or option, a
    /// value out of range.
    public init(parsing text: String, defaults: [String: Int] = [:], flag: String = "--workload") throws {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, let kind = WorkloadKind(rawValue: first) else {
            throw LabError.badValue(flag: flag, value: text, accepted: Self.accepted)
        }
        let specs = kind.options
        var values: [String: Int] = [:]
        for s in specs { values[s.key] = defaults[s.key] ?? s.defaultValue }
        var explicit: [String: Int] = [:]
        for part in parts.dropFirst() {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard kv.count == 2, let spec = specs.first(where: { $0.key == kv[0] }) else {
                throw LabError.badValue(flag: flag, value: text,
                                        accepted: "\(first) options \(specs.map { "\($0.key)=N" }.joined(separator: ", "))")
            }
            guard let v = Int(kv[1]), spec.range.contains(v) else {
                throw LabError.badValue(flag: flag, value: text,
                                        accepted: "\(first):\(spec.key) an integer in \(spec.range.lowerBound)...\(spec.range.upperBound)")
            }
            if explicit[spec.key] != nil {
                throw LabError.badValue(flag: flag, value: text, accepted: "each option once ('\(spec.key)' is given twice)")
            }
            values[spec.key] = v
            explicit[spec.key] = v
        }
        // Values the defaults set must be in range too (--cs-lines -1).
        for s in specs where !s.range.contains(values[s.key]!) {
            throw LabError.badValue(flag: flag == "--workload" ? "--\(s.key)" : flag, value: "\(values[s.key]!)",
                                    accepted: "\(s.range.lowerBound)...\(s.range.upperBound)")
        }
        self.kind = kind
        self.explicit = explicit.keys.sorted().map { "\($0)=\(explicit[$0]!)" }
        self.options = LockOptions(values)
    }

    /// The microbenchmark with these parameters (what `--cs-lines` and friends give).
    public static func micro(_ p: MicrobenchmarkParameters) -> WorkloadSpec {
        // Cannot fail for parameters in range; out-of-range ones are refused by RunMatrix.validate.
        (try? WorkloadSpec(parsing: "micro", defaults: [
            "cs-lines": p.csLines, "cs-ns": p.csNanoseconds, "ncs-ns": p.ncsNanoseconds, "ncs-random": p.ncsRandom ? 1 : 0,
        ])) ?? WorkloadSpec(uncheckedMicro: p)
    }

    private init(uncheckedMicro p: MicrobenchmarkParameters) {
        kind = .micro
        explicit = []
        options = LockOptions(["cs-lines": p.csLines, "cs-ns": p.csNanoseconds, "ncs-ns": p.ncsNanoseconds,
                               "ncs-random": p.ncsRandom ? 1 : 0])
    }

    /// Whether the workload issues reads at all: a workload with reads says how many with its
    /// `read-ratio` option (percent), and one without the option issues none.
    public var issuesReads: Bool { (value("read-ratio") ?? 0) > 0 }

    /// Why `lock` cannot run this workload (`ReadSharing.pairingRefusal`: an optimistic
    /// executor's reads beside updates, on a structure whose reads do not tolerate that); nil
    /// when it can, and always when the workload issues no reads (every operation then takes the
    /// executor's exclusive side).
    public func pairingRefusal(_ lock: LockSpec) -> String? {
        if let only = lock.entry.onlyWorkload {
            return only == kind ? nil : "\(lock.label) is a \(only.rawValue) of its own (liburcu's structure, not an executor): it runs only the \(only.rawValue) workload, not \(label)"
        }
        if lock.entry.isRCU, !kind.hasRCUTwin {
            return "\(lock.label) is RCU: its reads traverse versions its writers publish, which only a structure built for RCU offers (\(WorkloadKind.allCases.filter(\.hasRCUTwin).map(\.rawValue).joined(separator: ", "))); \(label) has no RCU twin"
        }
        guard issuesReads else { return nil }
        let structure = lock.entry.isRCU ? kind.rcuStructureType! : kind.structureType
        return ReadSharing.pairingRefusal(lock.entry.readSharing, lock: lock.label, workload: label, structure: structure)
    }

    /// The option's value, nil when the workload does not take it.
    public func value(_ key: String) -> Int? { options.values[key] }

    /// The workload at its edges, where a structure's corner cases run (`locklab validate --edges`,
    /// the workload tests): a heap that empties (prefill 0, each thread's insert/delete-min pair
    /// takes it from empty to at most the thread count and back), equal priorities (keys 1), one
    /// or two keys in a table or list (every operation on one chain's head, inserts of a present
    /// key, deletes of an absent one). Queue and stack already run from empty; counter, micro and
    /// snapshot have no size to vary that changes a code path.
    public static func edgeCases(_ kind: WorkloadKind) -> [WorkloadSpec] {
        let texts: [String]
        switch kind {
        case .pqueue: texts = ["pqueue:prefill=0", "pqueue:prefill=0:keys=1", "pqueue:prefill=1:keys=2"]
        case .hashtable: texts = ["hashtable:keys=1:read-ratio=20", "hashtable:keys=2:read-ratio=0"]
        case .list: texts = ["list:keys=1:read-ratio=20", "list:keys=2:read-ratio=0"]
        case .micro, .counter, .queue, .stack, .snapshot: texts = []
        }
        return texts.map { try! WorkloadSpec(parsing: $0) }
    }

    /// `cs-lines`, `cs-ns` (micro only), `ncs-ns`, `ncs-random` (every workload), as the CSV's columns.
    public var csLines: Int? { value("cs-lines") }
    public var csNanoseconds: Int? { value("cs-ns") }
    public var ncsNanoseconds: Int { value("ncs-ns") ?? 0 }
    public var ncsRandom: Bool { value("ncs-random") == 1 }

    /// The micro parameters (micro only).
    public var microParameters: MicrobenchmarkParameters? {
        guard kind == .micro else { return nil }
        return MicrobenchmarkParameters(csLines: csLines ?? 1, csNanoseconds: csNanoseconds ?? 0,
                                        ncsNanoseconds: ncsNanoseconds, ncsRandom: ncsRandom)
    }

    /// Builds the workload in `environment` and runs `binder` with its concrete type.
    public func bind<B: WorkloadBinder>(_ binder: B, environment: WorkloadEnvironment) throws -> B.Result {
        let outside = OutsideWork(nanoseconds: ncsNanoseconds, random: ncsRandom)
        let o = options
        switch kind {
        case .micro:
            return try binder.run(Microbenchmark(microParameters!, memory: environment.memory))
        case .counter:
            return try binder.run(CounterWorkload(environment, outside: outside))
        case .queue:
            return try binder.run(QueueWorkload(environment, outside: outside))
        case .stack:
            return try binder.run(StackWorkload(environment, outside: outside))
        case .hashtable:
            return try binder.run(HashTableWorkload(environment, keys: o.int("keys"), readPercent: o.int("read-ratio"), outside: outside))
        case .list:
            return try binder.run(ListWorkload(environment, keys: o.int("keys"), readPercent: o.int("read-ratio"), outside: outside))
        case .pqueue:
            return try binder.run(PriorityQueueWorkload(environment, keys: o.int("keys"), prefill: o.int("prefill"), outside: outside))
        case .snapshot:
            return try binder.run(SnapshotWorkload(environment, lines: o.int("lines"), readPercent: o.int("read-ratio"), outside: outside))
        }
    }

    /// Builds the workload's RCU twin over flavour `B.Flavor` (its domain made with `options`, the
    /// RCU executor's) and runs `binder` with it. Throws `LabError.impossible` for a workload
    /// with no twin (`pairingRefusal` says it first) or a pool that would not fit.
    public func bindRCU<B: RCUWorkloadBinder>(_ binder: B, environment: WorkloadEnvironment, options rcuOptions: LockOptions) throws -> B.Result {
        let outside = OutsideWork(nanoseconds: ncsNanoseconds, random: ncsRandom)
        let o = options
        switch kind {
        case .snapshot:
            return try binder.run(RCUSnapshotWorkload<B.Flavor>(environment, lines: o.int("lines"), readPercent: o.int("read-ratio"),
                                                                outside: outside, options: rcuOptions))
        case .hashtable:
            return try binder.run(RCUHashTableWorkload<B.Flavor>(environment, keys: o.int("keys"), readPercent: o.int("read-ratio"),
                                                                 outside: outside, options: rcuOptions))
        case .list:
            return try binder.run(RCUListWorkload<B.Flavor>(environment, keys: o.int("keys"), readPercent: o.int("read-ratio"),
                                                            outside: outside, options: rcuOptions))
        case .micro, .counter, .queue, .stack, .pqueue:
            throw LabError.impossible("\(name) has no RCU twin")
        }
    }

    /// Parses a comma-separated list (`micro,hashtable:read-ratio=90`); `all` is every workload.
    public static func parseList(_ text: String, defaults: [String: Int] = [:], flag: String = "--workload") throws -> [WorkloadSpec] {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if items.isEmpty { throw LabError.badValue(flag: flag, value: text, accepted: accepted) }
        return try items.flatMap { item in
            item == "all"
                ? try WorkloadKind.allCases.map { try WorkloadSpec(parsing: $0.rawValue, defaults: defaults, flag: flag) }
                : [try WorkloadSpec(parsing: item, defaults: defaults, flag: flag)]
        }
    }
}
