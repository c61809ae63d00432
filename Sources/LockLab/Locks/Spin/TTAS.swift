// ttas: test-and-test-and-set spin lock.
//
// Paper: L. Rudolph, Z. Segall, "Dynamic Decentralized Cache Schemes for MIMD Parallel Processors",
// ISCA 1984; analysed in T. E. Anderson, IEEE TPDS 1990.
// Idea: waiters spin on a plain load, which hits their own shared copy of the line, and only try the
// exchange when the word reads free; a release still sends every waiter at the exchange at once.
// (ck-fas is the exchange-first variant: one `xchg`, then read-spin on failure.)
// Invariants: word == 1 iff some thread holds the lock; only the holder stores 0.

import CShims

public struct TTASLock: LockAlgorithm {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "ttas", family: .spin, waiting: .spin,
        paper: "Rudolph & Segall, ISCA 1984 (test-and-test-and-set)",
        supportsTryLock: true)

    /// The lock word, alone on its 128-byte block: 0 free, 1 held.
    @usableFromInline let word: UnsafeMutablePointer<UInt32>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        word = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 1)
    }

    @inline(__always)
    public func lock(_ context: inout NoContext) {
        while true {
            // Relaxed: only a hint that the exchange may succeed; the exchange does the ordering.
            while cshims_u32_load_relaxed(word) != 0 {
                cshims_pause()
            }
            // Acquire: the exchange that returns 0 orders the critical section after it.
            if cshims_u32_exchange_acquire(word, 1) == 0 { return }
        }
    }

    @inline(__always)
    public func tryLock(_ context: inout NoContext) -> Bool {
        // Test first, so a failing trylock does not take the holder's line exclusive.
        cshims_u32_load_relaxed(word) == 0 && cshims_u32_exchange_acquire(word, 1) == 0
    }

    @inline(__always)
    public func unlock(_ context: inout NoContext) {
        // Release: the critical section's writes are visible before the word reads free.
        cshims_u32_store_release(word, 0)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(word), bytes: LabMemory.alignment)
    }
}
