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
public struct LabMemory: Sendable {
    public let policy: MemoryPolicy
    public init(policy: MemoryPolicy = .local) { self.policy = policy }

    public static let alignment = 128

    /// True when libnuma works on this kernel (`numa_available() >= 0`).
    public static let numaAvailable: Bool = numa_available() >= 0

    /// Real NUMA nodes libnuma sees (1 when it is unavailable).
    public static var realNodeCount: Int { numaAvailable ? Int(numa_max_node()) + 1 : 1 }

    /// A zeroed block of at least `bytes`, aligned to 128 bytes.
    public func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        let size = max(bytes, Self.alignment)
        if Self.numaAvailable, policy != .local {
            let p: UnsafeMutableRawPointer?
            switch policy {
            case let .node(n): p = numa_alloc_onnode(size, Int32(n))
            case .interleave: p = numa_alloc_interleaved(size)
            case .local: p = nil
            }
            // The node was checked against the machine when the run was configured, so failure
            // here is out-of-memory: stop rather than silently measure misplaced memory.
            guard let p else { fatalError("libnuma could not allocate \(size) bytes with policy \(policy)") }
            // numa_alloc_* are page-aligned mmaps, zero-filled; touch to fault the pages in now.
            memset(p, 0, size)
            return p
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: Self.alignment)
        memset(p, 0, size)
        return p
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
