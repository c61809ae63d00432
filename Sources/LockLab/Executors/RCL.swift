// rcl: remote core locking.
//
// Paper: J.-P. Lozi, F. David, G. Thomas, J. Lawall, G. Muller, "Remote Core Locking: Migrating
// Critical-Section Execution to Improve the Performance of Multithreaded Applications", USENIX
// ATC 2012.
// Idea: critical sections run as remote procedure calls on a server core. The server owns an
// array of request lines, one per client; a client writes its operation into its line, raises the
// line's pending word and spins on that same line; the server loops over the array, applies each
// pending operation, writes the result into the line and clears pending. Unlike ffwd the
// response comes back in the client's own line, and the server serves one client at a time.
// Invariants:
//  - only the client writes its operation and raises pending (release), only while its previous
//    request is done (pending == 0); only the server writes the result and clears pending (release);
//  - the server reads an operation after an acquire load of pending == 1; the client reads its
//    result after an acquire load of pending == 0;
//  - the server uses loads and stores only (no atomic read-modify-write on its path).
// The reference's per-request CAS, dropped: the authors' liblock rcl.c (UPMC 2010-2011; a copy in
// github seth4618/stacklets, liblock/rcl.c, servicing_loop) does, for each pending request,
// `local_val_compare_and_swap(int, &impl->locked, 0, 1)` on the lock the request names, applies
// it, then `request->pending = 0; impl->locked = 0`. That word excludes what the lab does not
// have: one server serves many locks (each request names its lock: `request->impl`), several
// servicing threads of one server may run when a critical section blocks, and a client already
// on the server's hardware thread runs its critical section in place, taking the same word
// (do_liblock_execute_operation). Here one server serves one structure with one servicing thread
// and no client runs in place, so only the server ever applies: the word would always be free
// and its CAS a pure cost (a locked instruction per request) with nothing to exclude.
// Parameters: one server thread with one servicing thread (the paper's runtime adds servicing
// threads to survive a critical section that blocks; the lab's operations never block, so one
// suffices). Request lines are 64 bytes, contiguous, as the paper's request array.
// Waiting: pinned with a CPU per thread, the server and the clients spin and never yield (the
// paper's server yields only on its slow path, for blocked servicing threads, which the lab does
// not have); when the run's threads share CPUs (oversubscribed or unpinned) both yield after
// 1024 idle polls (Delegation.swift).

import CShims

public struct RCLExecutor: Executor {
    public struct Context {
        @usableFromInline let line: UnsafeMutableRawPointer
    }

    public static let descriptor = LockDescriptor(
        name: "rcl", family: .delegation, waiting: .spin,
        paper: "Lozi, David, Thomas, Lawall & Muller, USENIX ATC 2012",
        supportsTryLock: false, helperThreads: 1)

    @usableFromInline static let lineBytes = 64
    /// Line layout: the operation (24 bytes), the result (8), the pending word (8).
    @usableFromInline static let resultOffset = 24
    @usableFromInline static let pendingOffset = 32

    @usableFromInline let lines: UnsafeMutableRawPointer
    @usableFromInline let clients: Int
    @usableFromInline let tally: CombiningTally
    /// Server and clients yield while waiting (the run's threads share CPUs; Delegation.swift).
    @usableFromInline let yields: Bool
    let memory: LabMemory

    public init(_ environment: ExecutorEnvironment) {
        memory = environment.memory
        clients = environment.clientThreads
        yields = environment.threadsShareCPUs
        lines = memory.allocate(bytes: max(1, clients) * Self.lineBytes)
        lines.initializeMemory(as: UInt8.self, repeating: 0, count: clients * Self.lineBytes)
        tally = CombiningTally(threads: clients + 1, memory: memory)
    }

    public func makeContext(for thread: ThreadSlot) -> Context { Context(line: lines + thread.index * Self.lineBytes) }

    public func freeContext(_ context: inout Context) { tally.depart() }

    @inline(__always)
    public func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        let line = context.line
        line.assumingMemoryBound(to: Operation.self).pointee = op
        let pending = (line + Self.pendingOffset).assumingMemoryBound(to: UInt64.self)
        // Release: the operation before the pending word the server polls.
        cshims_u64_store_release(pending, 1)
        var polls = 0
        // Acquire pairs with the server's release: the result is visible.
        while cshims_u64_load_acquire(pending) != 0 { DelegationWait.pause(&polls, yields: yields) }
        return (line + Self.resultOffset).assumingMemoryBound(to: UInt64.self).pointee
    }

    /// The server: loops over the request array until every client has left.
    public func serve<T: OperationTarget>(helper: ThreadSlot, target: T, control: GroupControl) {
        if control.arriveAndWait() == GroupPhase.abort { return }
        serveUntilClientsLeave(helper: helper, target: target, control: control)
    }

    /// The server's loop, after the start barrier.
    func serveUntilClientsLeave<T: OperationTarget>(helper: ThreadSlot, target: T, control: GroupControl) {
        let progress = control.progress(helper.index)
        var served: UInt64 = 0
        var idle = 0
        repeat {
            var sweep: UInt64 = 0
            for c in 0..<clients {
                let line = lines + c &* Self.lineBytes
                let pending = (line + Self.pendingOffset).assumingMemoryBound(to: UInt64.self)
                // Acquire pairs with the client's release of pending: its operation is visible.
                if cshims_u64_load_acquire(pending) != 0 {
                    (line + Self.resultOffset).assumingMemoryBound(to: UInt64.self).pointee =
                        target.apply(line.assumingMemoryBound(to: Operation.self).pointee)
                    // Release: the result before the client sees pending == 0.
                    cshims_u64_store_release(pending, 0)
                    sweep &+= 1
                }
            }
            if sweep != 0 {
                served &+= sweep
                tally.record(thread: clients, operations: sweep)
                cshims_u64_store_relaxed(progress, served)
                idle = 0
            } else {
                DelegationWait.serverIdle(&idle, yields: yields)
            }
        } while DelegationWait.serverMustGoOn(control, tally: tally, clients: clients)
    }

    public func combiningCounts() -> CombiningCounts? { tally.totals() }

    public func deallocate() {
        memory.deallocate(lines, bytes: max(1, clients) * Self.lineBytes)
        tally.deallocate(memory)
    }
}
