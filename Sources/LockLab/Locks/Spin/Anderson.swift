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
// Memory orders (C11, not just x86-TSO): the reset of slot s by the holder Y of ticket t must
// happen-before the read of slot s by the taker X of ticket t + slotCount, or X can read the 1
// that Y consumed and enter while another thread holds t + slotCount - 1 (ARMv8 allows it; on x86
// the locked RMW on `next` drains Y's store buffer and hides it). So every ticket is taken by an
// acq_rel RMW on `next` (lock's fetch_add, tryLock's CAS), and tryLock reads `next` with acquire:
//  - if Y takes any ticket after t before X takes t + slotCount, Y's reset is sequenced before
//    Y's release RMW, which X's acquire RMW reads through the release sequence of `next`;
//  - if some thread entered with a ticket in (t, t + slotCount) and then took another ticket in
//    that range, its entry came through the hand-over chain from Y's release in unlock (after the
//    reset), and its own release RMW passes that on to X; so does X's own earlier entry;
//  - otherwise the slotCount tickets t + 1 ... t + slotCount are held at once by slotCount threads
//    other than Y: slotCount + 1 > maxThreads threads, impossible.
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
        // acq_rel (see the header): our earlier reset before later ticket takers, and theirs
        // before our read of our slot. On x86 the same `lock xadd` as relaxed.
        let slot = cshims_u32_fetch_add_acq_rel(next, 1) & mask
        let mine = flag(slot)
        // Acquire: pairs with the previous holder's release store raising our flag.
        while cshims_u32_load_acquire(mine) == 0 {
            cshims_pause()
        }
        // Reset for the ticket that gets this slot next. Relaxed: our next release (the raise in
        // unlock, or our next ticket's acq_rel RMW) publishes it, as the header argues.
        cshims_u32_store_relaxed(mine, 0)
        context.slot = slot
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        // Acquire: the resets made before the release RMW that wrote this ticket (see the header).
        let ticket = cshims_u32_load_acquire(next)
        let slot = ticket & mask
        let candidate = flag(slot)
        // Acquire: a raised flag for the next unissued ticket pairs with the release that raised it.
        // Could the 1 be stale, left by the previous user of this slot (ticket - slotCount) between
        // its spin exit and its reset? Then tickets ticket-slotCount ... ticket-1 would all be held
        // by distinct threads, plus us: slotCount + 1 > maxThreads threads. So a 1 here means the
        // holder of ticket - 1 has released.
        if cshims_u32_load_acquire(candidate) == 0 { return false }
        // Take the ticket only if nobody has taken it since we read `next`; acq_rel as lock's.
        guard cshims_u32_cas_value_acq_rel(next, ticket, ticket &+ 1) else { return false }
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
