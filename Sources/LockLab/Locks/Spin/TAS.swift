// tas: test-and-set spin lock.
//
// Paper: the folklore lock; analysed in T. E. Anderson, "The Performance of Spin Lock Alternatives
// for Shared-Memory Multiprocessors", IEEE TPDS 1990.
// Idea: one word; acquire is an atomic exchange of 1 until it returns 0; release stores 0.
// Every failed exchange takes the line exclusive, so waiters hammer the holder's cache line.
// Invariants: word == 1 iff some thread holds the lock; only the holder stores 0.

import CShims

public struct TASLock: LockAlgorithm {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "tas", family: .spin, waiting: .spin,
        paper: "Anderson, IEEE TPDS 1990 (test-and-set)",
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
        // Acquire: the exchange that returns 0 orders the critical section after it.
        while cshims_u32_exchange_acquire(word, 1) != 0 {
            cshims_pause()
        }
    }

    @inline(__always)
    public func tryLock(_ context: inout NoContext) -> Bool {
        cshims_u32_exchange_acquire(word, 1) == 0
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
