// pf-ticket: the phase-fair ticket reader-writer lock (PF-T).
//
// Paper: Brandenburg & Anderson, "Spin-Based Reader-Writer Synchronization for Multiprocessor
// Real-Time Systems", Real-Time Systems 46(1), 2010, Listing 3 (PF-T); layout and constants as
// Concurrency Kit writes it (include/ck_pflock.h), whose twin is `ck-pflock`.
// Idea: reads and writes alternate in phases. Writers take FIFO tickets (win/wout); the writer
// served announces a write phase in the reader-entry counter's low bits (present bit and the
// phase id of its ticket) and waits for the readers already in to leave (rout catches up); readers
// that arrive during a write phase wait only for that one phase to end, so a reader waits for at
// most one writer and a writer for at most one reader phase. All four counters share one line
// (ck's layout): every reader's entry and exit is an RMW of it, so reads do not scale.
// Invariants: rin = 256 x (readers entered) + writer bits (PRES | PHID while a writer is present);
// rout = 256 x (readers left); win - wout = writers queued or holding; a writer holds iff it was
// served (wout == its ticket) and rout reached rin's reader part as it set its bits.

import CShims

public struct PFTicket: ReaderWriterLock {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "pf-ticket", family: .readerWriter, waiting: .spin,
        paper: "Brandenburg & Anderson, Real-Time Systems 2010 (PF-T, phase-fair ticket); ck_pflock layout",
        supportsTryLock: true)

    /// ck_pflock's constants: a reader counts in steps of 0x100, below which the writer bits live.
    @usableFromInline static let readerIncrement: UInt32 = 0x100
    @usableFromInline static let writerBits: UInt32 = 0x3
    @usableFromInline static let present: UInt32 = 0x2
    @usableFromInline static let phaseID: UInt32 = 0x1
    @usableFromInline static let readerMask: UInt32 = 0xFFFF_FFF0

    /// rin, rout, win, wout: four words of one line.
    @usableFromInline let rin: UnsafeMutablePointer<UInt32>
    @usableFromInline let rout: UnsafeMutablePointer<UInt32>
    @usableFromInline let win: UnsafeMutablePointer<UInt32>
    @usableFromInline let wout: UnsafeMutablePointer<UInt32>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) {
        memory = environment.memory
        rin = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: UInt32.self, capacity: 4)
        rout = rin + 1
        win = rin + 2
        wout = rin + 3
    }

    @inline(__always)
    public func lock(_ context: inout NoContext) {
        // Take a writer ticket and wait to be served (the writers' ticket lock). Acquire: the
        // previous writer's section comes before ours.
        let ticket = cshims_u32_fetch_add_relaxed(win, 1)
        while cshims_u32_load_acquire(wout) != ticket { cshims_pause() }
        enterWritePhase(ticket)
    }

    /// Announces the write phase to readers and waits for the readers already in to leave.
    @inline(__always) @usableFromInline
    func enterWritePhase(_ ticket: UInt32) {
        // Acq_rel: readers that count in after this see the bits; the count returned is the
        // readers in before us (low bits clear: the previous writer cleared them).
        let entered = cshims_u32_fetch_add_acq_rel(rin, (ticket & Self.phaseID) | Self.present)
        // Acquire: those readers' sections come before ours.
        while cshims_u32_load_acquire(rout) != entered { cshims_pause() }
    }

    @inline(__always)
    public func tryLock(_ context: inout NoContext) -> Bool {
        // Not in the paper: take a ticket only if no writer is queued and no reader is in, then
        // enter the write phase; a reader that slipped in between ends the (empty) phase at once.
        let ticket = cshims_u32_load_relaxed(win)
        guard cshims_u32_load_relaxed(wout) == ticket,
              cshims_u32_load_relaxed(rin) & Self.readerMask == cshims_u32_load_relaxed(rout) else { return false }
        var expected = ticket
        guard cshims_u32_cas_acquire(win, &expected, ticket &+ 1) else { return false }
        let entered = cshims_u32_fetch_add_acq_rel(rin, (ticket & Self.phaseID) | Self.present)
        if cshims_u32_load_acquire(rout) == entered { return true }
        var none = NoContext()
        unlock(&none)
        return false
    }

    @inline(__always)
    public func unlock(_ context: inout NoContext) {
        // Release (both): our section comes before the readers let in by clearing the bits and
        // before the next writer served.
        _ = cshims_u32_fetch_and_release(rin, Self.readerMask)
        _ = cshims_u32_fetch_add_release(wout, 1)
    }

    @inline(__always)
    public func readLock(_ context: inout NoContext) {
        // Acquire: a writer's bits clearing (its release) orders its section before ours.
        let w = cshims_u32_fetch_add_acquire(rin, Self.readerIncrement) & Self.writerBits
        if w == 0 { return }
        // Wait for this write phase only (the bits change: cleared, or the next writer's phase id).
        while cshims_u32_load_acquire(rin) & Self.writerBits == w { cshims_pause() }
    }

    @inline(__always)
    public func readUnlock(_ context: inout NoContext) {
        // Release: our reads come before a writer sees rout catch up.
        _ = cshims_u32_fetch_add_release(rout, Self.readerIncrement)
    }

    public func deallocate() {
        memory.deallocate(UnsafeMutableRawPointer(rin), bytes: LabMemory.alignment)
    }
}
