// ffwd: fast, fly-weight delegation to a dedicated server thread.
//
// Paper: S. Roghanchi, J. Eriksson, N. Basu, "ffwd: delegation is (much) faster than you think",
// SOSP 2017; the authors' code: bitslab/ffwd.
// Idea: a server thread, on a CPU of its own, owns the structure. Each client has one 64-byte
// request line (the operation and a toggle bit); it writes its operation, flips its request
// toggle and spins on its group's response line. The server sweeps the request lines; a line whose
// toggle differs from the server's response toggle for that client holds a new request: the
// server applies it and puts the result in its own copy of the group's response line. After each
// group of 15 clients, if it served one, it copies that 128-byte line once into the shared
// response line: 15 results, then the word of toggle bits (libffwd.c: local_return_values,
// memcpy'd per group). The shared line is written in one burst, so the clients spinning on it
// do not pull it back between results. The server's path has no atomic read-modify-write: only
// loads and stores.
// Invariants:
//  - a request line is written only by its client, a response line only by the server;
//  - client c has a request outstanding iff its request toggle != bit c of its group's response
//    toggles as the server holds them; the client writes its operation before flipping its toggle
//    (release), the server reads the operation after seeing the flip (acquire);
//  - the server writes a group's results before the toggle word that announces them (release);
//    the client reads its result after seeing its bit flip (acquire);
//  - every copy rewrites all 15 result slots, but the slot of a client not served in that group
//    pass with the value it already holds (the server's copy keeps each client's last result), so
//    a client reading its slot during a copy reads its own result either way. Result slots are
//    written and read with relaxed atomics (the toggle word orders them), so that concurrent
//    rewrite is no data race.
// Parameters: one server thread (the paper's single-server configuration); 15 clients per response
// group (120 bytes of results + an 8-byte toggle word fill a 128-byte response, as in the paper and
// bitslab/ffwd's ffwd.h). Request lines are 64 bytes, contiguous, as the paper's.
// Waiting: pinned with a CPU per thread, the server and the clients spin and never yield (the
// reference's server never yields); when the run's threads share CPUs (oversubscribed or
// unpinned) both yield after 1024 idle polls, so that the server or a client gets the CPU
// (Delegation.swift).

import CShims

public struct FFWDExecutor: Executor {
    public struct Context {
        @usableFromInline let request: UnsafeMutableRawPointer
        @usableFromInline let response: UnsafeMutableRawPointer
        @usableFromInline let slot: Int
        /// The toggle of this client's last request.
        @usableFromInline var toggle: UInt64
    }

    public static let descriptor = LockDescriptor(
        name: "ffwd", family: .delegation, waiting: .spin,
        paper: "Roghanchi, Eriksson & Basu, SOSP 2017",
        supportsTryLock: false, helperThreads: 1)

    /// Clients per response group: 15 results and a toggle word in 128 bytes.
    @usableFromInline static let groupSize = 15
    @usableFromInline static let requestBytes = 64
    @usableFromInline static let responseBytes = 128
    /// Request line layout: the operation (24 bytes), then the toggle word.
    @usableFromInline static let toggleOffset = 24
    /// Response line layout: 15 results, then the toggle word at byte 120.
    @usableFromInline static let responseToggleOffset = 120

    @usableFromInline let requests: UnsafeMutableRawPointer
    @usableFromInline let responses: UnsafeMutableRawPointer
    @usableFromInline let clients: Int
    @usableFromInline let groups: Int
    @usableFromInline let tally: CombiningTally
    /// Server and clients yield while waiting (the run's threads share CPUs; Delegation.swift).
    @usableFromInline let yields: Bool
    let memory: LabMemory

    public init(_ environment: ExecutorEnvironment) {
        memory = environment.memory
        clients = environment.clientThreads
        yields = environment.threadsShareCPUs
        groups = (clients + Self.groupSize - 1) / Self.groupSize
        requests = memory.allocate(bytes: max(1, clients) * Self.requestBytes)
        responses = memory.allocate(bytes: groups * Self.responseBytes)
        requests.initializeMemory(as: UInt8.self, repeating: 0, count: clients * Self.requestBytes)
        responses.initializeMemory(as: UInt8.self, repeating: 0, count: groups * Self.responseBytes)
        // The server's tally is the slot after the clients'.
        tally = CombiningTally(threads: clients + 1, memory: memory)
    }

    public func makeContext(for thread: ThreadSlot) -> Context {
        let group = thread.index / Self.groupSize
        return Context(request: requests + thread.index * Self.requestBytes,
                       response: responses + group * Self.responseBytes,
                       slot: thread.index % Self.groupSize, toggle: 0)
    }

    public func freeContext(_ context: inout Context) { tally.depart() }

    @inline(__always)
    public func execute<T: OperationTarget>(_ op: Operation, on target: T, _ context: inout Context) -> UInt64 {
        context.request.assumingMemoryBound(to: Operation.self).pointee = op
        let toggle = context.toggle ^ 1
        context.toggle = toggle
        // Release: the operation is visible before the flip that announces it.
        cshims_u64_store_release((context.request + Self.toggleOffset).assumingMemoryBound(to: UInt64.self), toggle)
        let word = (context.response + Self.responseToggleOffset).assumingMemoryBound(to: UInt64.self)
        let bit = UInt64(context.slot)
        var polls = 0
        // Acquire pairs with the server's release of the toggle word: our result is visible.
        while (cshims_u64_load_acquire(word) >> bit) & 1 != toggle { DelegationWait.pause(&polls, yields: yields) }
        // Relaxed: the server may be rewriting this slot with this same value (see the header).
        return cshims_u64_load_relaxed(context.response.assumingMemoryBound(to: UInt64.self) + context.slot)
    }

    /// The server: sweeps the request lines group by group until every client has left.
    public func serve<T: OperationTarget>(helper: ThreadSlot, target: T, control: GroupControl) {
        // The server's copy of every group's response line, results and toggle word (its own
        // memory, never shared; libffwd.c's local_return_values). Allocated here, on the server's
        // thread, once: the sweep allocates nothing.
        let words = Self.responseBytes / 8
        let toggleWord = Self.responseToggleOffset / 8
        let local = UnsafeMutableRawPointer.allocate(byteCount: groups * Self.responseBytes, alignment: LabMemory.alignment)
            .bindMemory(to: UInt64.self, capacity: groups * words)
        local.initialize(repeating: 0, count: groups * words)
        defer { local.deallocate() }
        let progress = control.progress(helper.index)
        if control.arriveAndWait() == GroupPhase.abort { return }
        var served: UInt64 = 0
        var idle = 0
        repeat {
            var sweep: UInt64 = 0
            for g in 0..<groups {
                let line = local + g &* words
                var bits = line[toggleWord]
                let first = g &* Self.groupSize
                for c in first..<min(first &+ Self.groupSize, clients) {
                    let request = requests + c &* Self.requestBytes
                    let slot = UInt64(c &- first)
                    // Acquire pairs with the client's release of its toggle: its operation is visible.
                    let toggle = cshims_u64_load_acquire((request + Self.toggleOffset).assumingMemoryBound(to: UInt64.self))
                    if toggle != (bits >> slot) & 1 {
                        line[Int(slot)] = target.apply(request.assumingMemoryBound(to: Operation.self).pointee)
                        bits ^= 1 << slot
                        sweep &+= 1
                    }
                }
                if bits != line[toggleWord] {
                    line[toggleWord] = bits
                    // One copy of the whole line: the results (relaxed: unchanged slots are
                    // rewritten with their own values), then the toggle word.
                    let shared = (responses + g &* Self.responseBytes).assumingMemoryBound(to: UInt64.self)
                    for w in 0..<toggleWord { cshims_u64_store_relaxed(shared + w, line[w]) }
                    // Release: the group's results before the word that announces them.
                    cshims_u64_store_release(shared + toggleWord, bits)
                }
            }
            if sweep != 0 {
                served &+= sweep
                tally.record(thread: clients, operations: sweep)
                cshims_u64_store_relaxed(progress, served)
                idle = 0
            } else {
                // Nothing pending: spin, and yield after a while only if the CPUs are shared
                // (unpinned or oversubscribed); pinned, the server spins as bitslab/ffwd's does.
                DelegationWait.serverIdle(&idle, yields: yields)
            }
        } while DelegationWait.serverMustGoOn(control, tally: tally, clients: clients)
    }

    public func combiningCounts() -> CombiningCounts? { tally.totals() }

    public func deallocate() {
        memory.deallocate(requests, bytes: max(1, clients) * Self.requestBytes)
        memory.deallocate(responses, bytes: groups * Self.responseBytes)
        tally.deallocate(memory)
    }
}
