// The lock protocol every algorithm implements, and what the harness tells a lock about its world.
//
// A lock is a trivial struct over memory it allocated itself (with `LabMemory`, so that it lands on
// the NUMA node the run asks for). Copying the struct copies pointers, never state: the harness
// hands one copy to each thread, and there is no ARC traffic in the hot loop (docs/performance.md).
// The lock's storage never moves: it is a manually allocated, 128-byte aligned block.
//
// Per-thread state (queue nodes and the like) is a `Context` made once per thread, on that thread,
// after it is pinned, so that first-touch places it on the thread's node.

/// How a waiter waits, as `locklab list` says it (the `WaitingPolicy` type parameter of the queue
/// locks reports its kind here).
public enum WaitingKind: String, Sendable, CaseIterable {
    case spin
    case park
    case spinThenPark = "spin-then-park"
    /// Never waits (no-lock). Not "none": CSV readers may take that for a missing value.
    case never
}

/// The families `locklab list` groups by.
public enum LockFamily: String, Sendable, CaseIterable {
    case baseline
    case reference = "ck-reference"
    case spin
    case queue
    case restriction = "concurrency-restriction"
    case numa = "numa-aware"
    case kernel
    case readerWriter = "reader-writer"
    /// Read-copy update: readers never wait, writers publish versions and wait for grace periods.
    case rcu
    case delegation
    case harness
}

/// One option a lock accepts on the command line (`cna:threshold=1000`), with its default.
public struct LockOptionSpec: Sendable {
    public let key: String
    public let defaultValue: Int
    public let range: ClosedRange<Int>
    public let help: String
    /// For an option whose value is a name (`bravo:inner=pthread-rwlock`): the names accepted, the
    /// value being the index of one; empty for an integer option.
    public let choices: [String]
    /// The value must be a power of two (checked when the spec is parsed, as the range is).
    public let powerOfTwo: Bool
    public init(_ key: String, default defaultValue: Int, range: ClosedRange<Int> = 0...Int.max,
                powerOfTwo: Bool = false, help: String) {
        self.key = key
        self.defaultValue = defaultValue
        self.range = range
        self.help = help
        self.powerOfTwo = powerOfTwo
        choices = []
    }

    /// An option naming one of `choices` (a lock a wrapper wraps, say); `default` is one of them.
    public init(_ key: String, choices: [String], default defaultName: String, help: String) {
        precondition(choices.contains(defaultName), "option \(key): default \(defaultName) is not a choice")
        self.key = key
        self.choices = choices
        defaultValue = choices.firstIndex(of: defaultName)!
        range = 0...(choices.count - 1)
        self.help = help
        powerOfTwo = false
    }

    /// The value as written: the choice's name, or the integer.
    public func text(_ value: Int) -> String {
        choices.indices.contains(value) ? choices[value] : "\(value)"
    }
}

/// What `locklab list` prints about a lock, and what the harness and validator must know.
public struct LockDescriptor: Sendable {
    public let name: String
    public let family: LockFamily
    public let waiting: WaitingKind
    public let paper: String
    /// `tryLock` is implemented.
    public let supportsTryLock: Bool
    /// `lock` and `unlock` may be called separately (false: only `withLock` works, e.g. swift-mutex).
    public let splitLockUnlock: Bool
    /// Largest thread count the lock supports (`no-lock`: 1); nil for no limit.
    public let maxThreads: Int?
    public let options: [LockOptionSpec]
    /// Helper threads an executor runs besides the clients (a delegation server), each on a CPU
    /// the plan reserves; 0 for every lock.
    public let helperThreads: Int

    public init(name: String, family: LockFamily, waiting: WaitingKind, paper: String,
                supportsTryLock: Bool, splitLockUnlock: Bool = true, maxThreads: Int? = nil,
                options: [LockOptionSpec] = [], helperThreads: Int = 0) {
        self.name = name
        self.family = family
        self.waiting = waiting
        self.paper = paper
        self.supportsTryLock = supportsTryLock
        self.splitLockUnlock = splitLockUnlock
        self.maxThreads = maxThreads
        self.options = options
        self.helperThreads = helperThreads
    }
}

/// What a lock is told when it is made.
public struct LockEnvironment: Sendable {
    /// Most threads that will ever hold a context on this lock.
    public let maxThreads: Int
    /// NUMA nodes of the run (virtual nodes count as nodes); thread node ids are 0..<nodeCount.
    public let nodeCount: Int
    /// Where the lock's own memory goes.
    public let memory: LabMemory
    /// The lock's options, every key resolved (defaults filled in).
    public let options: LockOptions

    public init(maxThreads: Int, nodeCount: Int, memory: LabMemory = .init(), options: LockOptions) {
        self.maxThreads = maxThreads
        self.nodeCount = max(1, nodeCount)
        self.memory = memory
        self.options = options
    }
}

/// A mutual-exclusion lock the harness can measure.
///
/// Conformers are structs of pointers (cheap to copy, no ARC) living in this module, with
/// `@inline(__always)` on `lock`/`unlock`/`tryLock`: the harness is generic over the type and is
/// entered through `LockEntry`, so each lock compiles into its own specialised loop.
/// `SendableMetatype`: the registry's `LockEntry` (Sendable) keeps each lock's type, and a type
/// is shared by every thread of a run; a lock's statics are immutable descriptors.
public protocol LockAlgorithm: SendableMetatype {
    /// Per-thread state: queue nodes, a ticket, nothing (`NoContext`).
    associatedtype Context

    static var descriptor: LockDescriptor { get }

    /// Allocates and initialises the lock. Throws `LockError` for options it cannot honour.
    init(_ environment: LockEnvironment) throws

    /// Called once on each thread, after pinning, before the thread first touches the lock.
    func makeContext(for thread: ThreadSlot) -> Context
    /// Called once on each thread when it is done with the lock.
    func freeContext(_ context: inout Context)

    func lock(_ context: inout Context)
    func unlock(_ context: inout Context)
    /// Acquires if free now; true if acquired. Only called when `descriptor.supportsTryLock`.
    func tryLock(_ context: inout Context) -> Bool
    /// Runs `body` holding the lock. Default: lock, body, unlock.
    func withLock<R>(_ context: inout Context, _ body: () throws -> R) rethrows -> R

    /// Frees the lock's memory. No thread may use it afterwards.
    func deallocate()
}

/// The context of a lock that needs none.
public struct NoContext {
    @inline(__always) public init() {}
}

extension LockAlgorithm {
    @inline(__always)
    public func withLock<R>(_ context: inout Context, _ body: () throws -> R) rethrows -> R {
        lock(&context)
        defer { unlock(&context) }
        return try body()
    }

    public func tryLock(_ context: inout Context) -> Bool {
        fatalError("\(Self.descriptor.name) does not offer trylock")
    }

    public func freeContext(_ context: inout Context) {}
}

extension LockAlgorithm where Context == NoContext {
    @inline(__always)
    public func makeContext(for thread: ThreadSlot) -> NoContext { NoContext() }
}

public enum LockError: Error, CustomStringConvertible, Equatable {
    case unknownLock(String, known: [String])
    case unknownOption(lock: String, key: String, accepted: [String])
    case badOptionValue(lock: String, key: String, value: String, accepted: String)
    case malformedSpec(String)
    case repeatedOption(spec: String, key: String)
    case tooManyThreads(lock: String, threads: Int, max: Int)
    case unsupported(String)

    public var description: String {
        switch self {
        case let .unknownLock(name, known):
            var hint = ""
            if name.lowercased() == "null" && known.contains("no-lock") {
                hint = "; did you mean 'no-lock'? (it was called 'null', which CSV readers take for a missing value)"
            } else if let near = closestName(to: name, among: known) {
                hint = "; did you mean '\(near)'?"
            }
            return "unknown lock '\(name)'\(hint); known locks: \(known.joined(separator: ", "))"
        case let .unknownOption(lock, key, accepted):
            let list = accepted.isEmpty ? "it takes no options" : "accepted: \(accepted.joined(separator: ", "))"
            return "lock '\(lock)' has no option '\(key)'; \(list)"
        case let .badOptionValue(lock, key, value, accepted):
            return "lock '\(lock)': option \(key)=\(value) is not valid; expected \(accepted)"
        case let .malformedSpec(spec):
            return "malformed lock spec '\(spec)'; expected NAME or NAME:KEY=VALUE[:KEY=VALUE...]"
        case let .repeatedOption(spec, key):
            return "lock spec '\(spec)' sets option '\(key)' more than once; give each option once"
        case let .tooManyThreads(lock, threads, max):
            return "lock '\(lock)' supports at most \(max) thread(s), asked for \(threads)"
        case let .unsupported(what):
            return what
        }
    }
}

/// The name in `names` nearest to `name` (edit distance at most a third of its length, at least 1,
/// or one is a prefix of the other), for "did you mean".
func closestName(to name: String, among names: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var previous = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var current = [i + 1]
            for (j, cb) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (ca == cb ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
    let lower = Array(name.lowercased())
    let scored = names.map { ($0, distance(lower, Array($0))) }.sorted { $0.1 < $1.1 }
    if let best = scored.first, best.1 <= max(1, lower.count / 3) { return best.0 }
    if lower.count >= 2, let prefixed = names.first(where: { $0.hasPrefix(String(lower)) }) { return prefixed }
    return nil
}

/// Resolved option values of one lock: every declared key, explicit or default.
public struct LockOptions: Sendable, Equatable {
    public private(set) var values: [String: Int]
    public init(_ values: [String: Int] = [:]) { self.values = values }

    /// The value of a declared option. A lock asking for a key it did not declare is a bug.
    public func int(_ key: String) -> Int {
        guard let v = values[key] else { preconditionFailure("option '\(key)' was not declared") }
        return v
    }

    /// `key=value;key=value`, keys sorted: the CSV's `lock_options`.
    public var csvText: String {
        values.keys.sorted().map { "\($0)=\(values[$0]!)" }.joined(separator: ";")
    }
}
