// What the delegation executors (flat-combining, cc-synch, h-synch, ffwd, rcl) share: the
// combining tally behind the `combining_degree` column, the departure count a server thread
// waits on before it stops, and how a thread waits for a word another thread writes.
//
// Waiting (`DelegationWait`): when the run's threads share CPUs (`ExecutorEnvironment.
// threadsShareCPUs`: more threads, servers included, than CPUs, or threads unpinned), spin with
// `pause` for `spinsBeforeYield` polls, then yield the CPU on every further poll, so that the
// thread that must answer (a combiner, a server, the holder of h-synch's global lock) gets the
// CPU instead of a waiter burning its time slice: the Synch framework does the same
// (`resched()` only when `isSystemOversubscribed()`, in its client waits and its CLH lock).
// Otherwise (pinned, a CPU per thread) spin with `pause` only and never yield: a yield there
// costs a system call and, worse, lets a spinning client fall into the scheduler just when its
// response lands (ffwd's server never yields in bitslab/ffwd; rcl's only on its slow path).
// `yields` is fixed when the executor is made; each wait tests it (a register, not a load of
// shared memory).

import CShims
import Foundation

/// Combining passes (or server sweeps that applied at least one operation) and the operations
/// they applied: `combining_degree` is operations / passes.
public struct CombiningCounts: Sendable, Equatable {
    public var passes: UInt64
    public var operations: UInt64
    public init(passes: UInt64, operations: UInt64) {
        self.passes = passes
        self.operations = operations
    }
    /// Operations per pass between two readings; nil when no pass ran.
    public func degree(since start: CombiningCounts) -> Double? {
        let p = passes &- start.passes
        return p > 0 ? Double(operations &- start.operations) / Double(p) : nil
    }
}

/// One 128-byte block per thread (clients, then helpers, by slot index): the thread's combining
/// passes and the operations they applied, written only by that thread (relaxed load and store:
/// a single writer needs no read-modify-write), read by the harness with relaxed loads. Block 0
/// also holds the departure count.
@usableFromInline
struct CombiningTally: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutableRawPointer
    @usableFromInline let threads: Int
    static let block = 128

    init(threads: Int, memory: LabMemory) {
        self.threads = threads
        base = memory.allocate(bytes: (threads + 1) * Self.block)
    }

    func deallocate(_ memory: LabMemory) { memory.deallocate(base, bytes: (threads + 1) * Self.block) }

    /// Thread `thread` ran one pass that applied `operations` operations.
    @inline(__always) @usableFromInline
    func record(thread: Int, operations: UInt64) {
        let words = (base + (thread &+ 1) &* Self.block).assumingMemoryBound(to: UInt64.self)
        cshims_u64_store_relaxed(words, cshims_u64_load_relaxed(words) &+ 1)
        cshims_u64_store_relaxed(words + 1, cshims_u64_load_relaxed(words + 1) &+ operations)
    }

    func totals() -> CombiningCounts {
        var sum = CombiningCounts(passes: 0, operations: 0)
        for t in 0..<threads {
            let words = (base + (t + 1) * Self.block).assumingMemoryBound(to: UInt64.self)
            sum.passes &+= cshims_u64_load_relaxed(words)
            sum.operations &+= cshims_u64_load_relaxed(words + 1)
        }
        return sum
    }

    /// Clients that have left (freed their context): a server stops only when every client has
    /// left, so that no client waits on a server that is gone.
    @usableFromInline var departed: UnsafeMutablePointer<UInt64> { base.assumingMemoryBound(to: UInt64.self) }

    func depart() { _ = cshims_u64_fetch_add_acq_rel(departed, 1) }
}

/// How a delegation thread waits (see the file header).
@usableFromInline
enum DelegationWait {
    /// Polls with `pause` before the first yield (only where the run's threads share CPUs).
    @usableFromInline static let spinsBeforeYield = 1024

    /// One poll's wait: `pause`; and where `yields` (the run's threads share CPUs), a yield on
    /// every poll after the first `spins` (default `spinsBeforeYield`).
    @inline(__always) @usableFromInline
    static func pause(_ polls: inout Int, yields: Bool, spins: Int = spinsBeforeYield) {
        if !yields || polls < spins {
            polls &+= 1
            cshims_pause()
        } else {
            sched_yield()
        }
    }

    /// A server's wait after a sweep that found nothing: where `yields` (the run's threads share
    /// CPUs), `pause` and then yield as `pause(_:yields:)`; otherwise nothing at all: the server
    /// sweeps again at once, as bitslab/ffwd's server loop does (no `pause`, no yield). A long
    /// `pause` loop is also what a hypervisor's pause-loop exiting takes for a spinning lock
    /// waiter: on a VM the idle server then leaves its vCPU and a request that lands meanwhile
    /// waits for its return (measured: p50 ~1.2 us instead of ~0.2 us at one client with
    /// 200 us between requests).
    @inline(__always) @usableFromInline
    static func serverIdle(_ idle: inout Int, yields: Bool) {
        if yields { pause(&idle, yields: true) }
    }

    /// A server's loop between sweeps: true while it must go on. It stops once the group's phase is
    /// `stop` and every one of `clients` clients has left.
    @inline(__always) @usableFromInline
    static func serverMustGoOn(_ control: GroupControl, tally: CombiningTally, clients: Int) -> Bool {
        if control.currentPhase() != GroupPhase.stop { return true }
        return cshims_u64_load_acquire(tally.departed) < UInt64(clients)
    }
}
