// qrwlock: the Linux queued reader-writer lock (kernel/locking/qrwlock.c,
// include/asm-generic/qrwlock.h), waiting on the lab's qspinlock (arch_spinlock_t on x86).
//
// Idea: one 32-bit word `cnts` holds the reader count (bits 9 and up) and the writer state (the
// low byte: locked 0xff, bit 8: a writer waits). The fast paths are one RMW of the word: a
// reader adds a bias and is in if no writer bit was set; a writer CASes 0 to locked. Everyone
// else queues on `wait_lock`, a qspinlock, so waiters are served in order (fair: a waiting writer
// holds back new readers, which queue behind it) and only the queue's head spins on `cnts`.
// Every reader's entry and exit is an RMW of `cnts`, so reads do not scale.
// Invariants: cnts = 512 x (readers in or trying) + (0xff if a writer holds) + (0x100 if the
// writer at the head of the queue waits for readers to drain); at most one writer holds; a reader
// holds iff its bias is counted and the locked byte was clear when it counted (fast path) or
// when it spun at the head of the queue (slow path).
// Transitions (as qspinlock's, (readers, waiting, locked)):
//   read fast:   (n, 0, 0) -> (n+1, 0, 0)             reader in
//   read slow:   (n, *, L) -> (n-1, *, L) ; queue ; (n+1, *, *) ; spin until locked == 0 ; dequeue
//   write fast:  (0, 0, 0) -> (0, 0, L)
//   write slow:  queue ; (n, 0, 0) -> (n, W, 0) ; spin until (0, W, 0) ; -> (0, 0, L) ; dequeue
//   unlocks:     (n, *, *) -> (n-1, *, *) ; (0, *, L) -> (0, *, 0)

import CShims

public struct QRWLock: ReaderWriterLock {
    public typealias Context = QSpinlockLock.Context

    public static let descriptor = LockDescriptor(
        name: "qrwlock", family: .readerWriter, waiting: .spin,
        paper: "Linux kernel/locking/qrwlock.c (queued rwlock, waiters on a qspinlock)",
        supportsTryLock: true, maxThreads: QSpinlockLayout.maxCPUs)

    /// include/asm-generic/qrwlock_types.h and qrwlock.h.
    @usableFromInline static let writerLocked: UInt32 = 0x0ff
    @usableFromInline static let writerWaiting: UInt32 = 0x100
    @usableFromInline static let writerMask: UInt32 = 0x1ff
    @usableFromInline static let readerBias: UInt32 = 1 << 9

    /// `cnts`, alone on its line.
    @usableFromInline let cnts: UnsafeMutablePointer<UInt32>
    /// `wait_lock`: the queue readers and writers wait in.
    @usableFromInline let waitLock: QSpinlockLock
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) throws {
        memory = environment.memory
        waitLock = try QSpinlockLock(LockEnvironment(maxThreads: environment.maxThreads, nodeCount: environment.nodeCount,
                                                     memory: environment.memory, options: LockOptions([:])))
        cnts = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 1)
    }

    public func makeContext(for thread: ThreadSlot) -> Context { waitLock.makeContext(for: thread) }
    public func freeContext(_ context: inout Context) { waitLock.freeContext(&context) }

    @inline(__always)
    public func readLock(_ context: inout Context) {
        // queued_read_lock: atomic_add_return_acquire.
        let c = cshims_u32_fetch_add_acquire(cnts, Self.readerBias) &+ Self.readerBias
        if c & Self.writerMask == 0 { return }
        readSlowPath(&context)
    }

    /// queued_read_lock_slowpath (process context: the in_interrupt() branch does not apply).
    @inline(never) @usableFromInline
    func readSlowPath(_ context: inout Context) {
        // Take our bias back and queue (relaxed: atomic_sub; the queue's lock orders what follows).
        _ = cshims_u32_fetch_sub_release(cnts, Self.readerBias)
        waitLock.lock(&context)
        _ = cshims_u32_fetch_add_relaxed(cnts, Self.readerBias)
        // atomic_cond_read_acquire(!(VAL & _QW_LOCKED)): the writer's section comes before ours.
        while cshims_u32_load_acquire(cnts) & Self.writerLocked != 0 { cshims_pause() }
        // Let the next waiter become the head.
        waitLock.unlock(&context)
    }

    @inline(__always)
    public func readUnlock(_ context: inout Context) {
        // queued_read_unlock: atomic_sub_return_release.
        _ = cshims_u32_fetch_sub_release(cnts, Self.readerBias)
    }

    @inline(__always)
    public func lock(_ context: inout Context) {
        // queued_write_lock: atomic_try_cmpxchg_acquire(0 -> locked).
        var expected: UInt32 = 0
        if cshims_u32_cas_acquire(cnts, &expected, Self.writerLocked) { return }
        writeSlowPath(&context)
    }

    /// queued_write_lock_slowpath.
    @inline(never) @usableFromInline
    func writeSlowPath(_ context: inout Context) {
        waitLock.lock(&context)
        // Try directly if no reader is present.
        var expected: UInt32 = 0
        if cshims_u32_load_relaxed(cnts) == 0, cshims_u32_cas_acquire(cnts, &expected, Self.writerLocked) {
            waitLock.unlock(&context)
            return
        }
        // Tell readers a writer is pending (atomic_or, relaxed): new fast-path readers back out.
        _ = cshims_u32_fetch_or_acquire(cnts, Self.writerWaiting)
        // When no readers or writers remain, set the locked byte (try_cmpxchg_acquire).
        while true {
            var c = cshims_u32_load_relaxed(cnts)
            while c != Self.writerWaiting {
                cshims_pause()
                c = cshims_u32_load_relaxed(cnts)
            }
            if cshims_u32_cas_acquire(cnts, &c, Self.writerLocked) { break }
        }
        waitLock.unlock(&context)
    }

    @inline(__always)
    public func tryLock(_ context: inout Context) -> Bool {
        // queued_write_trylock.
        var expected = cshims_u32_load_relaxed(cnts)
        guard expected == 0 else { return false }
        return cshims_u32_cas_acquire(cnts, &expected, Self.writerLocked)
    }

    @inline(__always)
    public func unlock(_ context: inout Context) {
        // queued_write_unlock is smp_store_release of the locked byte; here an RMW of the word
        // (fetch_sub of 0xff, release), as Linux 3.16's qrwlock did: readers' biases in the same
        // word stay atomic without a mixed-size store (which C11 and ThreadSanitizer do not model).
        _ = cshims_u32_fetch_sub_release(cnts, Self.writerLocked)
    }

    public func deallocate() {
        waitLock.deallocate()
        memory.deallocate(UnsafeMutableRawPointer(cnts), bytes: LabMemory.alignment)
    }
}
