// ck-ticket: Concurrency Kit's ticket lock (ck_spinlock_ticket), the C reference.
//
// Paper: Mellor-Crummey & Scott, ACM TOCS 1991, as ck writes it (include/spinlock/ticket.h).
// Idea: FIFO tickets. On x86-64 ck packs both counters into one 32-bit word, next ticket in the
// high 16 bits and the ticket being served in the low 16: lock is one `lock xadd` of 0x10000, then
// spin until the halves agree; trylock is one CAS of the whole word; unlock is a `lock incw` of the
// low half (an RMW, where the Swift `ticket` does a plain store to its own `owner` word).
// Invariants: ck's (at most 65535 threads queued at once); the word is alone on its 128-byte block.
// Trylock exists only where ck defines CK_F_SPINLOCK_TICKET_TRYLOCK (x86 with TSO), so it is
// offered on x86_64 only; elsewhere ck falls back to two unpadded words and no trylock.

import CCK

public struct CKTicketLock: LockAlgorithm {
    public typealias Context = NoContext

    #if arch(x86_64) || arch(i386)
    static let trylockAvailable = true
    #else
    static let trylockAvailable = false
    #endif

    public static let descriptor = LockDescriptor(
        name: "ck-ticket", family: .reference, waiting: .spin,
        paper: "Concurrency Kit ck_spinlock_ticket (Mellor-Crummey & Scott ticket lock)",
        supportsTryLock: trylockAvailable)

    @usableFromInline let spinlock: UnsafeMutablePointer<ck_spinlock_ticket_t>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        precondition(MemoryLayout<ck_spinlock_ticket_t>.size <= LabMemory.alignment)
        memory = environment.memory
        spinlock = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: ck_spinlock_ticket_t.self, capacity: 1)
        cck_ticket_init(spinlock)
    }

    // Orders: ck's own (ck_pr_fence_lock / ck_pr_fence_unlock).
    @inline(__always)
    public func lock(_ context: inout NoContext) {
        ck_spinlock_ticket_lock(spinlock)
    }

    @inline(__always)
    public func tryLock(_ context: inout NoContext) -> Bool {
        #if arch(x86_64) || arch(i386)
        return ck_spinlock_ticket_trylock(spinlock)
        #else
        fatalError("ck-ticket: this ck build has no ck_spinlock_ticket_trylock")
        #endif
    }

    @inline(__always)
    public func unlock(_ context: inout NoContext) {
        ck_spinlock_ticket_unlock(spinlock)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(spinlock), bytes: LabMemory.alignment)
    }
}
