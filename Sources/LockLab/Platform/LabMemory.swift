// Memory placement with libnuma: where a lock's words, the benchmark's shared data and the
// per-thread queue nodes live. Every block is zeroed, at least 128-byte aligned (two cache lines,
// docs/performance.md, "False sharing") and never moves.

import CNuma
import Foundation

/// Where memory goes.
public enum MemoryPolicy: Sendable, Equatable, CustomStringConvertible {
    /// The allocating thread's node (first touch); the default.
    case local
    /// One real NUMA node.
    case node(Int)
    /// Pages interleaved over all real nodes.
    case interleave

    public init(parsing text: String) throws {
        switch text {
        case "local": self = .local
        case "interleave": self = .interleave
        default:
            guard let n = Int(text), n >= 0 else {
                throw LabError.badValue(flag: "--mem-node", value: text, accepted: "a node number, 'local' or 'interleave'")
            }
            self = .node(n)
        }
    }

    public var description: String {
        switch self {
        case .local: return "local"
        case .interleave: return "interleave"
        case let .node(n): return "\(n)"
        }
    }
}

/// An allocator that follows a `MemoryPolicy`. libnuma where the kernel supports it, else aligned
/// allocation (first touch) with the policy reported as not applied.
///
/// A placement the lab asks for is checked, not assumed (issue 10, section 3): a container's
/// seccomp profile (Docker's default without CAP_SYS_NICE) makes `mbind` fail with EPERM, and
/// libnuma's `numa_alloc_onnode` then hands back first-touch memory with only a line on stderr.
/// So a placed block is mapped with `numa_alloc` (mmap, no policy), bound with the lab's own
/// `mbind` call whose result is kept, touched, and read back with `get_mempolicy(MPOL_F_ADDR)`
/// (the range's policy) and `get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR)` (the node its first page
/// is on). `placement` gathers what every block of this allocator got: runs.csv's
/// `mem_policy_applied` and the note `run` prints come from it.
public struct LabMemory: Sendable {
    public let policy: MemoryPolicy
    /// What the kernel reports for the blocks placed so far (shared by copies of this allocator).
    public let placement: MemoryPlacementLog
    public init(policy: MemoryPolicy = .local) {
        self.policy = policy
        placement = MemoryPlacementLog(policy: policy)
    }

    public static let alignment = 128

    /// True when libnuma works on this kernel (`numa_available() >= 0`).
    public static let numaAvailable: Bool = numa_available() >= 0

    /// Whether this process may set memory policies, for the manifest: "settable", or why not.
    /// `numa_available` only checks get_mempolicy; a seccomp profile may deny mbind alone, so
    /// this binds a scratch page (MPOL_DEFAULT: changes nothing) and reports the result.
    public static let policyProbe: String = {
        guard numaAvailable else { return "unavailable (numa_available: get_mempolicy denied or no NUMA support)" }
        let page = Int(getpagesize())
        guard let p = numa_alloc(page) else { return "unknown (cannot map a page)" }
        defer { numa_free(p, page) }
        return mbind(p, UInt(page), MPOL_DEFAULT, nil, 0, 0) == 0 ? "settable" : "denied (mbind: \(errnoText(errno)))"
    }()

    /// Real NUMA nodes libnuma sees (1 when it is unavailable).
    public static var realNodeCount: Int { numaAvailable ? Int(numa_max_node()) + 1 : 1 }

    /// A zeroed block of at least `bytes`, aligned to 128 bytes.
    public func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let size = max(bytes, Self.alignment)
        if Self.numaAvailable, policy != .local {
            // numa_alloc is a page-aligned mmap without a policy: the bind below is ours to check.
            guard let p = numa_alloc(size) else {
                fatalError("libnuma could not map \(size) bytes (out of memory or address space)")
            }
            let bound = Self.bind(p, bytes: size, policy)
            // Zero-filled already; touch to fault the pages in now, under the policy just set.
            memset(p, 0, size)
            placement.record(bound.map { .notApplied("mbind: \($0)") } ?? Self.check(p, policy))
            return p
        }
        if policy != .local {
            placement.record(.notApplied("libnuma unavailable (numa_available: get_mempolicy denied or no NUMA support)"))
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: Self.alignment)
        memset(p, 0, size)
        return p
    }

    /// Words of the node masks passed to mbind and get_mempolicy: 1024 nodes, beyond any kernel's
    /// MAX_NUMNODES in use (get_mempolicy refuses a mask shorter than the kernel's node count).
    static let maskWords = 16

    /// Sets `policy` on the block with mbind(2); nil on success, else the error in words.
    static func bind(_ p: UnsafeMutableRawPointer, bytes: Int, _ policy: MemoryPolicy) -> String? {
        var mask = [UInt](repeating: 0, count: maskWords)
        let mode: Int32
        switch policy {
        case .local: return nil
        case let .node(n):
            guard n >= 0, n < maskWords * UInt.bitWidth else { return "node \(n) beyond \(maskWords * UInt.bitWidth) nodes" }
            mask[n / UInt.bitWidth] |= 1 << UInt(n % UInt.bitWidth)
            mode = MPOL_BIND
        case .interleave:
            // Every node this process may allocate on (its cpuset's mems), as numa_alloc_interleaved.
            guard let allowed = numa_get_mems_allowed() else { return "numa_get_mems_allowed failed" }
            defer { numa_bitmask_free(allowed) }
            for node in 0..<min(Int(allowed.pointee.size), maskWords * UInt.bitWidth)
            where numa_bitmask_isbitset(allowed, UInt32(node)) != 0 {
                mask[node / UInt.bitWidth] |= 1 << UInt(node % UInt.bitWidth)
            }
            mode = MPOL_INTERLEAVE
        }
        let rc = mask.withUnsafeBufferPointer {
            mbind(p, UInt(bytes), mode, $0.baseAddress, UInt(maskWords * UInt.bitWidth + 1), 0)
        }
        return rc == 0 ? nil : errnoText(errno)
    }

    /// What the kernel reports for a block that was bound to `policy` and touched.
    static func check(_ p: UnsafeMutableRawPointer, _ policy: MemoryPolicy) -> MemoryPlacementLog.Outcome {
        var mode: Int32 = -1
        var mask = [UInt](repeating: 0, count: maskWords)
        let rc = mask.withUnsafeMutableBufferPointer {
            get_mempolicy(&mode, $0.baseAddress, UInt(maskWords * UInt.bitWidth), p, UInt32(MPOL_F_ADDR))
        }
        guard rc == 0 else { return .unverified("get_mempolicy: \(errnoText(errno))") }
        switch policy {
        case .local:
            return .applied
        case let .node(n):
            guard mode == MPOL_BIND, mask[n / UInt.bitWidth] & (1 << UInt(n % UInt.bitWidth)) != 0 else {
                return .notApplied("the kernel reports policy \(mode) for the block, not a bind to node \(n)")
            }
            var node: Int32 = -1
            guard get_mempolicy(&node, nil, 0, p, UInt32(MPOL_F_NODE | MPOL_F_ADDR)) == 0 else {
                return .unverified("get_mempolicy(MPOL_F_NODE): \(errnoText(errno))")
            }
            return node == Int32(n) ? .applied : .notApplied("the block's first page is on node \(node), not \(n)")
        case .interleave:
            return mode == MPOL_INTERLEAVE ? .applied
                : .notApplied("the kernel reports policy \(mode) for the block, not interleave")
        }
    }

    static func errnoText(_ e: Int32) -> String {
        "\(String(cString: strerror(e))) (errno \(e))"
    }

    /// Frees a block from `allocate(bytes:)` of the same size and policy.
    public func deallocate(_ p: UnsafeMutableRawPointer, bytes: Int) {
        let size = max(bytes, Self.alignment)
        if Self.numaAvailable, policy != .local {
            numa_free(p, size)
        } else {
            p.deallocate()
        }
    }

    /// Typed convenience: `count` padded slots of `T`, each on its own 128-byte stride.
    public func allocatePadded<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutableRawPointer {
        allocate(bytes: Self.paddedStride(of: type) * count)
    }

    /// The stride that gives each `T` its own pair of cache lines.
    public static func paddedStride<T>(of type: T.Type) -> Int {
        let s = MemoryLayout<T>.stride
        return (s + alignment - 1) / alignment * alignment
    }
}

/// What placement the blocks of one `LabMemory` got, gathered as they are allocated (on the
/// controller and on each thread, so behind a lock; never in a measured loop).
public final class MemoryPlacementLog: @unchecked Sendable {
    public enum Outcome: Equatable, Sendable {
        /// The kernel reports the policy asked for.
        case applied
        /// The policy was set (mbind succeeded) but the kernel would not say (get_mempolicy denied).
        case unverified(String)
        /// The policy is not in effect: the block is first-touch local memory.
        case notApplied(String)
    }

    public let policy: MemoryPolicy
    private let lock = NSLock()
    private var blocks = 0
    private var firstProblem: Outcome?

    init(policy: MemoryPolicy) { self.policy = policy }

    func record(_ outcome: Outcome) {
        lock.lock()
        defer { lock.unlock() }
        blocks += 1
        switch (outcome, firstProblem) {
        case (.applied, _): break
        // A block not placed outweighs one that could not be checked.
        case (.notApplied, .unverified?), (_, nil): firstProblem = outcome
        default: break
        }
    }

    /// runs.csv's `mem_policy_applied`: the policy asked for when every block has it ("0",
    /// "interleave"; "local" when none was asked), "local" when a block fell back to first touch,
    /// "unverified" when the kernel would not say.
    public var applied: String {
        lock.lock()
        defer { lock.unlock() }
        switch firstProblem {
        case nil: return policy.description
        case .notApplied?: return "local"
        case .unverified?: return "unverified"
        case .applied?: return policy.description
        }
    }

    /// One line for `run` and `sweep` when the placement asked for is not (known to be) in effect.
    public var note: String? {
        lock.lock()
        defer { lock.unlock() }
        switch firstProblem {
        case let .notApplied(why)?:
            return "--mem-node \(policy) was not applied (\(why)); the memory is first-touch local, and runs.csv's mem_policy_applied says local"
        case let .unverified(why)?:
            return "--mem-node \(policy) was set but cannot be verified (\(why)); runs.csv's mem_policy_applied says unverified"
        default:
            return nil
        }
    }
}
