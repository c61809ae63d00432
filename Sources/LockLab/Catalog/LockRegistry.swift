// The catalog of locks: one line per algorithm. A lock added here is listed by `locklab list`,
// runnable by `locklab run`, tortured by `locklab torture` and checked by the generic
// mutual-exclusion validator with no new test code. A spec (`mcs`, `cna:threshold=1000`) is
// resolved here once, at parse time, into its entry: nothing below looks a lock up by name.

import Foundation

public enum LockRegistry {
    /// Every lock the lab carries, in `locklab list` order.
    public static let all: [LockEntry] = [
        LockEntry(NoLock.self),
        // Baselines
        LockEntry(PthreadMutexLock.self),
        LockEntry(PthreadAdaptiveLock.self),
        LockEntry(PthreadSpinLock.self),
        LockEntry(SwiftMutexLock.self),
        // Concurrency Kit references
        LockEntry(CKFASLock.self),
        LockEntry(CKTicketLock.self),
        LockEntry(CKMCSLock.self),
        LockEntry(CKCLHLock.self),
        LockEntry(readerWriter: CKRWLock.self),
        LockEntry(readerWriter: CKPFLock.self),
        LockEntry(readerWriter: CKBRLock.self),
        // Spin locks
        LockEntry(TASLock.self),
        LockEntry(TTASLock.self),
        LockEntry(BackoffLock.self),
        LockEntry(TicketLock.self),
        LockEntry(AndersonLock.self),
        // Queue locks
        LockEntry(CLHLock.self),
        LockEntry(CLHSpinThenParkLock.self),
        LockEntry(MCSLock.self),
        LockEntry(MCSSpinThenParkLock.self),
        // Concurrency restriction
        LockEntry(MalthusianLock.self),
        LockEntry(MalthusianSpinThenParkLock.self),
        // NUMA-aware
        LockEntry(CBOMCSLock.self),
        LockEntry(CTKTTKTLock.self),
        LockEntry(CMCSMCSLock.self),
        LockEntry(HMCSLock.self),
        LockEntry(CNALock.self),
        LockEntry(CNASpinThenParkLock.self),
        LockEntry(ShflLock.self),
        LockEntry(ShflBlockingLock.self),
        // Kernel-style
        LockEntry(QSpinlockLock.self),
        LockEntry(QSpinlockCNALock.self),
        LockEntry(FutexMutexLock.self),
        LockEntry(FutexSpinLock.self),
        // Reader-writer (reads share through the read side; updates take the write side)
        LockEntry(readerWriter: RWLock.self),
        LockEntry(readerWriter: PthreadRWLock.self),
        LockEntry(readerWriter: PthreadRWLockWriterPreferring.self),
        LockEntry(readerWriter: PFTicket.self),
        LockEntry(readerWriter: QRWLock.self),
        LockEntry(readerWriter: BRLock.self),
        // Variants in the order of the option's choices (CRWWP.writerChoices, Bravo.innerChoices).
        LockEntry(variants: [LockEntry(readerWriter: CRWWP<CBOMCSLock>.self), LockEntry(readerWriter: CRWWP<CTKTTKTLock>.self),
                             LockEntry(readerWriter: CRWWP<CMCSMCSLock>.self), LockEntry(readerWriter: CRWWP<HMCSLock>.self)],
                  option: "writers"),
        LockEntry(variants: [LockEntry(readerWriter: Bravo<PthreadRWLock>.self),
                             LockEntry(readerWriter: Bravo<PthreadRWLockWriterPreferring>.self),
                             LockEntry(readerWriter: Bravo<RWLock>.self), LockEntry(readerWriter: Bravo<PFTicket>.self),
                             LockEntry(readerWriter: Bravo<QRWLock>.self)],
                  option: "inner"),
        LockEntry(executor: SeqlockExecutor.self),
        // RCU (runs only on the workloads with an RCU twin: snapshot, hashtable, list)
        LockEntry.rcu(QSBR.self),
        LockEntry.rcu(EBR.self),
        LockEntry.rcu(MembRCU.self),
        // liburcu's flavours, the reference (RCU/URCU.swift, through the CURCU shim)
        LockEntry.rcu(URCUMemb.self),
        LockEntry.rcu(URCUQSBR.self),
        LockEntry.rcu(URCUMB.self),
        LockEntry.rcu(URCUBP.self),
        // liburcu's cds_lfht, the reference structure on hashtable (RCU/URCULFHT.swift)
        LockEntry.urcuLFHT(),
        // Delegation
        LockEntry(executor: FlatCombiningExecutor.self),
        LockEntry(executor: CCSynchExecutor.self),
        LockEntry(executor: HSynchExecutor.self),
        LockEntry(executor: FFWDExecutor.self),
        LockEntry(executor: RCLExecutor.self),
        // Node replication (a replica of the structure per node, one shared log)
        LockEntry(executor: NodeReplicationExecutor.self),
    ]

    public static var names: [String] { all.map { $0.descriptor.name } }

    /// The locks and delegation executors (every entry but the RCU flavours): what runs every
    /// workload and the mutual-exclusion tests, and what `all` names on the command line.
    public static var lockNames: [String] { all.filter { !$0.isRCU && $0.onlyWorkload == nil }.map { $0.descriptor.name } }

    public static func lookup(_ name: String) -> LockEntry? {
        all.first { $0.descriptor.name == name }
    }
}

/// A registered executor (every lock, through `LockExecutor`) with its specialised entry points.
/// Built with the concrete type, so the closures below call `Harness.measure` specialised for it
/// and, through `WorkloadSpec.bind`, for each workload (an existential opened at run time would
/// run the unspecialised generic loop).
public struct LockEntry: @unchecked Sendable {
    /// The lock type (nil for an executor that is not a lock, such as a delegation executor).
    public let type: (any LockAlgorithm.Type)?
    public let descriptor: LockDescriptor
    /// How the executor treats the workload's reads (`Executor.readSharing`): `list` shows it.
    public let readSharing: ReadSharing
    /// The one workload an entry that is a structure of its own runs (urcu-lfht: hashtable); nil
    /// for an executor that runs any workload (or, RCU, any RCU twin).
    public private(set) var onlyWorkload: WorkloadKind? = nil
    private let runWorkload: @Sendable (RunConfig, WorkloadSpec) throws -> RawRunResult
    private let runTorture: @Sendable (TortureConfig) throws -> TortureResult

    /// A lock: measured through `LockExecutor<L>`, tortured by `Torture`.
    public init<L: LockAlgorithm>(_ type: L.Type) {
        self.type = type
        descriptor = L.descriptor
        readSharing = .exclusive
        runWorkload = { config, workload in
            try workload.bind(MeasureBinder<LockExecutor<L>>(config: config),
                              environment: WorkloadEnvironment(threads: config.threads.count, memory: config.memory, seed: config.seed))
        }
        runTorture = { config in try Torture.run(L.self, config: config) }
    }

    /// A reader-writer lock: measured through `ReaderWriterExecutor<L>` (reads share the read
    /// side), tortured (its write side) and validated as the lock it also is.
    public init<L: ReaderWriterLock>(readerWriter type: L.Type) {
        self.type = type
        descriptor = L.descriptor
        readSharing = ReaderWriterExecutor<L>.readSharing
        runWorkload = { config, workload in
            try workload.bind(MeasureBinder<ReaderWriterExecutor<L>>(config: config),
                              environment: WorkloadEnvironment(threads: config.threads.count, memory: config.memory, seed: config.seed))
        }
        runTorture = { config in try Torture.run(L.self, config: config) }
    }

    /// An executor that is not a lock (delegation): measured on every workload, tortured through
    /// `execute` (`Torture.run(executor:)`).
    public init<E: Executor>(executor: E.Type) {
        type = nil
        descriptor = E.descriptor
        readSharing = E.readSharing
        runWorkload = { config, workload in
            try workload.bind(MeasureBinder<E>(config: config, workload: workload),
                              environment: WorkloadEnvironment(threads: config.threads.count, memory: config.replicaMemory(0), seed: config.seed))
        }
        runTorture = { config in try Torture.run(executor: E.self, config: config) }
    }

    /// A lock generic over another lock that one of its options names (`bravo:inner=rwlock`,
    /// `c-rw-wp:writers=c-tkt-tkt`): one entry per choice, each specialised for its type, and the
    /// option's value picks which one runs. Every variant has the same descriptor (the wrapper's).
    /// `type` is the default choice's (what a test that makes the lock directly gets).
    public init(variants: [LockEntry], option: String) {
        let first = variants[0]
        precondition(variants.allSatisfy { $0.descriptor.name == first.descriptor.name })
        type = first.type
        descriptor = first.descriptor
        readSharing = first.readSharing
        onlyWorkload = first.onlyWorkload
        runWorkload = { config, workload in try variants[config.spec.options.int(option)].runWorkload(config, workload) }
        runTorture = { config in try variants[config.spec.options.int(option)].runTorture(config) }
    }

    /// An RCU flavour: one entry per writer lock (`writer=`, RCUWriters.choices), each measured
    /// through `RCUExecutor` on the workload's RCU twin (`WorkloadSpec.bindRCU`), which builds the
    /// flavour's domain with the structure. Not tortured alone: its writers are a catalog lock
    /// (torture that), its reads are checked by `validate` on the twins.
    public static func rcu<F: RCUFlavor>(_ flavor: F.Type) -> LockEntry {
        LockEntry(variants: [LockEntry(rcu: F.self, writer: MCSLock.self), LockEntry(rcu: F.self, writer: TicketLock.self),
                             LockEntry(rcu: F.self, writer: PthreadMutexLock.self), LockEntry(rcu: F.self, writer: FutexMutexLock.self)],
                  option: "writer")
    }

    init<F: RCUFlavor, Wr: LockAlgorithm>(rcu flavor: F.Type, writer: Wr.Type) {
        type = nil
        descriptor = RCUExecutor<F, Wr>.descriptor
        readSharing = .optimistic
        runWorkload = { config, workload in
            try workload.bindRCU(RCUMeasureBinder<F, Wr>(config: config),
                                 environment: WorkloadEnvironment(threads: config.threads.count, memory: config.memory, seed: config.seed),
                                 options: config.spec.options)
        }
        runTorture = { _ in
            throw LabError.impossible("\(F.name) is not a lock: torture its writer lock (\(Wr.descriptor.name)); `locklab validate --lock \(F.name) --workload snapshot` checks its reads and grace periods")
        }
    }

    /// liburcu's cds_lfht over one of liburcu's flavours (`flavour=`, the order of
    /// `URCULFHTExecutor.flavourChoices`): a structure of its own, run on hashtable only.
    public static func urcuLFHT() -> LockEntry {
        LockEntry(variants: [LockEntry(lfht: URCUMemb.self), LockEntry(lfht: URCUQSBR.self),
                             LockEntry(lfht: URCUMB.self), LockEntry(lfht: URCUBP.self)],
                  option: "flavour")
    }

    init<F: LiburcuFlavor>(lfht flavor: F.Type) {
        type = nil
        descriptor = URCULFHTExecutor<F>.descriptor
        readSharing = .optimistic
        onlyWorkload = .hashtable
        runWorkload = { config, workload in
            let environment = WorkloadEnvironment(threads: config.threads.count, memory: config.memory, seed: config.seed)
            return try Harness.measure(executor: URCULFHTExecutor<F>.self, workload: try workload.lfhtWorkload(F.self, environment: environment),
                                       config: config)
        }
        runTorture = { _ in
            throw LabError.impossible("\(URCULFHTExecutor<F>.name) is a hash table, not a lock: `locklab validate --lock \(URCULFHTExecutor<F>.name) --workload hashtable` checks it")
        }
    }

    /// Whether this entry is an RCU flavour (it runs only on workloads with an RCU twin);
    /// urcu-lfht, a structure of its own, is not one.
    public var isRCU: Bool { descriptor.family == .rcu && onlyWorkload == nil }

    /// Runs `workload` with this executor.
    /// Throws `LabError.impossible` for a pairing that cannot run (`WorkloadSpec.pairingRefusal`).
    public func run(_ config: RunConfig, _ workload: WorkloadSpec) throws -> RawRunResult {
        if let refusal = workload.pairingRefusal(config.spec) { throw LabError.impossible(refusal) }
        return try runWorkload(config, workload)
    }

    /// Runs the lock microbenchmark with this executor.
    public func run(_ config: RunConfig, _ parameters: MicrobenchmarkParameters) throws -> RawRunResult {
        try runWorkload(config, .micro(parameters))
    }

    /// Tortures this lock (`locklab torture`).
    public func torture(_ config: TortureConfig) throws -> TortureResult {
        try runTorture(config)
    }
}

/// Runs `Harness.measure` for executor `E` with whichever workload the spec builds; for a
/// replicated executor (node replication), with the workload built again for each further
/// replica, on its node's memory (same seed: the same initial state).
struct MeasureBinder<E: Executor>: WorkloadBinder {
    let config: RunConfig
    var workload: WorkloadSpec? = nil
    func run<W: Workload>(_ first: W) throws -> RawRunResult {
        let count = E.replicas(nodeCount: config.nodeCount)
        guard count > 1, let spec = workload else {
            return try Harness.measure(executor: E.self, workload: first, config: config)
        }
        var replicas: [W] = []
        do {
            for r in 1..<count {
                replicas.append(try spec.bind(SameWorkload<W>(), environment: WorkloadEnvironment(
                    threads: config.threads.count, memory: config.replicaMemory(r), seed: config.seed)))
            }
        } catch {
            first.deallocate()
            for w in replicas { w.deallocate() }
            throw error
        }
        return try Harness.measure(executor: E.self, workload: first, config: config, replicas: replicas)
    }
}

/// Hands back the workload a spec builds as the type `W` the same spec built before.
struct SameWorkload<W: Workload>: WorkloadBinder {
    func run<X: Workload>(_ workload: X) throws -> W {
        guard let w = workload as? W else { throw LabError.impossible("a workload spec built two types (\(W.self), \(X.self))") }
        return w
    }
}

/// Runs `Harness.measure` for the RCU executor over whichever RCU twin the spec builds, the
/// executor made over the twin's domain.
struct RCUMeasureBinder<F: RCUFlavor, Wr: LockAlgorithm>: RCUWorkloadBinder {
    typealias Flavor = F
    let config: RunConfig
    func run<W: RCUWorkload>(_ workload: W) throws -> RawRunResult where W.Flavor == F {
        try Harness.measure(executor: RCUExecutor<F, Wr>.self, workload: workload, config: config) { environment in
            try RCUExecutor<F, Wr>(environment, domain: workload.domain)
        }
    }
}

/// A lock as named on the command line or in an experiment file: `name[:key=value[:key=value…]]`.
public struct LockSpec: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    /// The lock's catalog entry, resolved when the spec was parsed.
    public let entry: LockEntry
    /// Options given explicitly, in the order given.
    public let explicit: [(key: String, value: Int)]
    /// The spec as written.
    public let given: String
    /// Every option of the lock with its value (explicit or default).
    public let options: LockOptions

    public static func == (a: LockSpec, b: LockSpec) -> Bool {
        a.name == b.name && a.options == b.options && a.label == b.label
    }

    /// The label the CSV's `lock` column carries, which names the configuration by its resolved
    /// settings: the name, plus the options whose value differs from the default (sorted). So
    /// `backoff:max-backoff=1024` (the default) is `backoff`, and two spellings of the same
    /// settings are one series.
    public var label: String {
        let defaults = Dictionary(uniqueKeysWithValues: entry.descriptor.options.map { ($0.key, $0.defaultValue) })
        let differing = options.values.filter { defaults[$0.key] != $0.value }.sorted { $0.key < $1.key }
        if differing.isEmpty { return name }
        return ([name] + differing.map { "\($0.key)=\(text($0.key, $0.value))" }).joined(separator: ":")
    }

    /// Every option as `key=value;…`, keys sorted, a named choice by its name: the CSV's `lock_options`.
    public var optionsText: String {
        options.values.keys.sorted().map { "\($0)=\(text($0, options.values[$0]!))" }.joined(separator: ";")
    }

    private func text(_ key: String, _ value: Int) -> String {
        entry.descriptor.options.first { $0.key == key }?.text(value) ?? "\(value)"
    }

    public var description: String { label }

    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, !first.isEmpty else { throw LockError.malformedSpec(text) }
        guard let entry = LockRegistry.lookup(first) else {
            throw LockError.unknownLock(first, known: LockRegistry.names)
        }
        let specs = entry.descriptor.options
        var values: [String: Int] = [:]
        for s in specs { values[s.key] = s.defaultValue }
        var explicit: [(key: String, value: Int)] = []
        for part in parts.dropFirst() {
            let kv = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard kv.count == 2, !kv[0].isEmpty else { throw LockError.malformedSpec(text) }
            guard let spec = specs.first(where: { $0.key == kv[0] }) else {
                throw LockError.unknownOption(lock: first, key: kv[0], accepted: specs.map(\.key))
            }
            if explicit.contains(where: { $0.key == kv[0] }) {
                throw LockError.repeatedOption(spec: text, key: kv[0])
            }
            if !spec.choices.isEmpty {
                guard let v = spec.choices.firstIndex(of: kv[1]) else {
                    throw LockError.badOptionValue(lock: first, key: kv[0], value: kv[1],
                                                   accepted: "one of \(spec.choices.joined(separator: ", "))")
                }
                values[kv[0]] = v
                explicit.append((kv[0], v))
                continue
            }
            guard let v = Int(kv[1]), spec.range.contains(v), !spec.powerOfTwo || v & (v - 1) == 0 else {
                let upper = spec.range.upperBound == Int.max ? "" : "\(spec.range.upperBound)"
                throw LockError.badOptionValue(lock: first, key: kv[0], value: kv[1],
                                               accepted: "\(spec.powerOfTwo ? "a power of two" : "an integer") in \(spec.range.lowerBound)...\(upper)")
            }
            values[kv[0]] = v
            explicit.append((kv[0], v))
        }
        self.name = first
        self.given = text
        self.entry = entry
        self.explicit = explicit
        self.options = LockOptions(values)
    }

    /// Specs with the same resolved settings (same label) once each, in first-given order, and a
    /// note for each one dropped ("'backoff:max-backoff=1024' is 'backoff' ...").
    public static func mergingDuplicates(_ specs: [LockSpec]) -> (specs: [LockSpec], notes: [String]) {
        var kept: [LockSpec] = []
        var given: [String: [String]] = [:]
        for spec in specs {
            if kept.contains(where: { $0.label == spec.label }) {
                given[spec.label, default: []].append(spec.given)
            } else {
                kept.append(spec)
            }
        }
        let notes = kept.compactMap { spec -> String? in
            guard let more = given[spec.label] else { return nil }
            let spellings = ([spec.given] + more).map { "'\($0)'" }
            let same = Set([spec.given] + more).count == 1
                ? "\(spellings[0]) is listed \(spellings.count) times"
                : "\(spellings.joined(separator: ", ")) have the same settings"
            return "\(same): run once, as '\(spec.label)'"
        }
        return (kept, notes)
    }

    /// Parses a comma-separated list (`mcs,cna:threshold=1000`); `all` is every registered lock and
    /// delegation executor (the executors that run every workload), `rcu` every RCU flavour (which
    /// run only on the workloads with an RCU twin).
    public static func parseList(_ text: String) throws -> [LockSpec] {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if items.isEmpty { throw LockError.malformedSpec(text) }
        return try items.flatMap { item -> [LockSpec] in
            switch item {
            case "all": return try LockRegistry.lockNames.map { try LockSpec(parsing: $0) }
            case "rcu": return try LockRegistry.all.filter(\.isRCU).map { try LockSpec(parsing: $0.descriptor.name) }
            default: return [try LockSpec(parsing: item)]
            }
        }
    }
}
