// ticket: the ticket lock (FIFO).
//
// Paper: J. M. Mellor-Crummey, M. L. Scott, ACM TOCS 9(1), 1991 (after D. P. Reed, R. K. Kanodia,
// "Synchronization with Eventcounts and Sequencers", CACM 1979).
// Idea: `next` hands out tickets with fetch-and-add; `owner` is the ticket being served. A thread
// takes a ticket and spins until `owner` equals it; release increments `owner`. Grants are FIFO,
// so a preempted waiter stalls everyone behind it (the oversubscription collapse).
// Invariants:
//  - owner <= next (mod 2^32); next - owner is the number of holders plus waiters;
//  - only the holder writes `owner`, so the release is a plain store of owner + 1, not an RMW;
//  - the lock is free iff owner == next.
// Layout: `next` and `owner` are two 32-bit words on the same 128-byte block, as in ck, whose x86
// ticket lock packs both halves into one 32-bit word. Same line because the uncontended and the
// lightly contended paths (the common case) then move one line per handover, not two, and a
// trylock reads both in one miss; the price is that arrivals' fetch-and-adds invalidate the line
// the waiters spin on, which only matters in the regime where FIFO spinning already dominates.
// Unlike ck, `owner` is its own word, so release is a plain `mov` (ck's is a `lock incw` on the
// shared word): that difference alone is what separates `ticket` from `ck-ticket`.

import CShims

public struct TicketLock: LockAlgorithm {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "ticket", family: .spin, waiting: .spin,
        paper: "Mellor-Crummey & Scott, ACM TOCS 1991 (ticket lock)",
        supportsTryLock: true)

    /// Next ticket to hand out (offset 0 of the block).
    @usableFromInline let next: UnsafeMutablePointer<UInt32>
    /// Ticket being served (offset 4 of the same block).
    @usableFromInline let owner: UnsafeMutablePointer<UInt32>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        next = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 2)
        owner = next + 1
    }

    @inline(__always)
    public func lock(_ context: inout NoContext) {
        // Relaxed: taking a ticket orders nothing; the acquire is on the `owner` load that grants.
        let ticket = cshims_u32_fetch_add_relaxed(next, 1)
        // Acquire: pairs with the previous holder's release store of owner = ticket.
        while cshims_u32_load_acquire(owner) != ticket {
            cshims_pause()
        }
    }

    @inline(__always)
    public func tryLock(_ context: inout NoContext) -> Bool {
        // Acquire: if `owner` is the next ticket, this pairs with the release that made it so.
        let serving = cshims_u32_load_acquire(owner)
        var expected = serving
        // Take ticket `serving` only if nobody has: then next == owner held at the CAS, and since
        // owner never passes an unissued ticket, the lock is ours. Acquire for symmetry with lock;
        // it costs nothing over relaxed on x86 (`lock cmpxchg` either way).
        return cshims_u32_cas_acquire(next, &expected, serving &+ 1)
    }

    @inline(__always)
    public func unlock(_ context: inout NoContext) {
        // Only the holder writes `owner`, so a relaxed read of our own last write is exact.
        let served = cshims_u32_load_relaxed(owner)
        // Release: the critical section happens-before the next ticket holder's acquire load.
        cshims_u32_store_release(owner, served &+ 1)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(next), bytes: LabMemory.alignment)
    }
}
