// anderson: Anderson's array-based queue lock.
//
// Paper: T. E. Anderson, "The Performance of Spin Lock Alternatives for Shared-Memory
// Multiprocessors", IEEE TPDS 1(1), 1990.
// Idea: a ticket picks a slot in a circular array of flags; each waiter spins on its own slot's
// line, and release raises the flag of the next slot only, so a handover invalidates one waiter.
// Invariants:
//  - slotCount = environment.maxThreads rounded up to a power of two, so `ticket & mask` stays
//    consistent when the 32-bit ticket counter wraps; at most maxThreads threads ever hold a
//    ticket at once, so no two of them share a slot;
//  - at most one flag is 1, and while the lock is free it is the slot of ticket `next`; the thread
//    that sees its flag 1 resets it to 0 before entering (its slot is reused slotCount tickets
//    later), and only then, in its unlock, raises the next one;
//  - only the holder of ticket t raises slot (t + 1) & mask, once, in its unlock.
// Layout: `next` has its own 128-byte block, followed by slotCount flag blocks of 128 bytes.
// Context: the slot the thread got with its ticket, needed by its unlock.

import CShims

public struct AndersonLock: LockAlgorithm {
    public struct Context {
        /// The slot of the ticket this thread holds (meaningful between lock and unlock).
        @usableFromInline var slot: UInt32
    }

    public static let descriptor = LockDescriptor(
        name: "anderson", family: .spin, waiting: .spin,
        paper: "Anderson, IEEE TPDS 1990 (array-based queue lock)",
        supportsTryLock: true)

    /// Next ticket to hand out, on block 0.
    @usableFromInline let next: UnsafeMutablePointer<UInt32>
    /// Block 1 ... slotCount: slot i's flag (1: the ticket of this slot may enter) at flags + i * stride.
    @usableFromInline let flags: UnsafeMutableRawPointer
    @usableFromInline let mask: UInt32
    @usableFromInline let memory: LabMemory

    @usableFromInline static let slotStride = LabMemory.alignment

    public init(_ environment: LockEnvironment) throws {
        guard environment.maxThreads >= 1, environment.maxThreads <= 1 << 20 else {
            throw LockError.unsupported("anderson: maxThreads \(environment.maxThreads) is outside 1...\(1 << 20)")
        }
        var slots = 1
        while slots < environment.maxThreads { slots <<= 1 }
        mask = UInt32(slots - 1)
        memory = environment.memory
        let block = memory.allocate(bytes: (slots + 1) * Self.slotStride)
        next = block.bindMemory(to: UInt32.self, capacity: 1)
        flags = block + Self.slotStride
        for i in 0..<slots {
            (flags + i * Self.slotStride).bindMemory(to: UInt32.self, capacity: 1)
        }
        // Ticket 0 may enter: the lock starts free. Plain store: no thread sees the lock yet.
        flags.assumingMemoryBound(to: UInt32.self).pointee = 1
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        Context(slot: 0)
    }

    @inline(__always)
    func flag(_ slot: UInt32) -> UnsafeMutablePointer<UInt32> {
        (flags + Int(slot) &* Self.slotStride).assumingMemoryBound(to: UInt32.self)
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        // Relaxed: taking a ticket orders nothing; the acquire is on our slot's flag.
        let slot = cshims_u32_fetch_add_relaxed(next, 1) & mask
        let mine = flag(slot)
        // Acquire: pairs with the previous holder's release store raising our flag.
        while cshims_u32_load_acquire(mine) == 0 {
            cshims_pause()
        }
        // Reset for the ticket that gets this slot next. Relaxed: the next store of 1 to this slot
        // is made by a later holder, after our release in unlock, so it is ordered after this one.
        cshims_u32_store_relaxed(mine, 0)
        context.slot = slot
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        let ticket = cshims_u32_load_relaxed(next)
        let slot = ticket & mask
        let candidate = flag(slot)
        // Acquire: a raised flag for the next unissued ticket pairs with the release that raised it.
        // Could the 1 be stale, left by the previous user of this slot (ticket - slotCount) between
        // its spin exit and its reset? Then tickets ticket-slotCount ... ticket-1 would all be held
        // by distinct threads, plus us: slotCount + 1 > maxThreads threads. So a 1 here means the
        // holder of ticket - 1 has released.
        if cshims_u32_load_acquire(candidate) == 0 { return false }
        var expected = ticket
        // Take the ticket only if nobody has taken it since we read `next`.
        guard cshims_u32_cas_acquire(next, &expected, ticket &+ 1) else { return false }
        cshims_u32_store_relaxed(candidate, 0)
        context.slot = slot
        return true
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        // Release: the critical section happens-before the next ticket's acquire of its flag.
        cshims_u32_store_release(flag((context.slot &+ 1) & mask), 1)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(next), bytes: (Int(mask) + 2) * Self.slotStride)
    }
}
