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
// Grouping and placement, as libffwd.c: clients are grouped per NUMA node, never across nodes
// (libffwd.c indexes a client's response by its chip, `server_responses[my_chip * MAX_SOCK +
// id_in_chip / NCLIENTS]`, and keeps one request array per chip, `chip0..3`, each
// `numa_alloc_onnode(4096, chip)`). Here a client's rank in its node (the order its thread makes
// its context: a fetch-add on the node's count) gives its group (rank / 15) and its slot
// (rank % 15); a node's request lines are one contiguous block of 64-byte lines, allocated and
// zeroed by the first of its clients to make a context (pinned by then: first touch puts the
// block on its node, as the lab places per-thread memory; a `--mem-node` policy overrides). Every
// context is made before the start barrier, so after it the server reads each node's final count
// and block. Response lines are allocated by the building thread (libffwd.c: on the server's
// node, `numa_alloc_onnode(..., server_numa_node)`; the lab's executor is not told the server's
// node when it is made).
// Parameters: one server thread (the paper's single-server configuration); 15 clients per response
// group (120 bytes of results + an 8-byte toggle word fill a 128-byte response, as in the paper and
// bitslab/ffwd's ffwd.h). Request lines are 64 bytes, contiguous per node.
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

    /// One 128-byte block per node: word 0 the clients that made a context there (their ranks),
    /// word 1 the node's request block (nil until its first client makes one).
    @usableFromInline let nodeWords: UnsafeMutableRawPointer
    @usableFromInline let responses: UnsafeMutableRawPointer
    @usableFromInline let clients: Int
    @usableFromInline let nodeCount: Int
    /// Response groups a node may need (all clients on one node): a node's groups are
    /// `node * groupsPerNode ..< (node + 1) * groupsPerNode`.
    @usableFromInline let groupsPerNode: Int
    /// Response lines in all: `nodeCount * groupsPerNode`.
    @usableFromInline let groups: Int
    @usableFromInline let tally: CombiningTally
    /// Server and clients yield while waiting (the run's threads share CPUs; Delegation.swift).
    @usableFromInline let yields: Bool
    let memory: LabMemory

    public init(_ environment: ExecutorEnvironment) {
        memory = environment.memory
        clients = environment.clientThreads
        yields = environment.threadsShareCPUs
        nodeCount = environment.nodeCount
        groupsPerNode = max(1, (clients + Self.groupSize - 1) / Self.groupSize)
        groups = nodeCount * groupsPerNode
        nodeWords = memory.allocate(bytes: nodeCount * LabMemory.alignment)
        responses = memory.allocate(bytes: groups * Self.responseBytes)
        responses.initializeMemory(as: UInt8.self, repeating: 0, count: groups * Self.responseBytes)
        // The server's tally is the slot after the clients'.
        tally = CombiningTally(threads: clients + 1, memory: memory)
    }

    /// Bytes of one node's request block: room for every client.
    var nodeRequestBytes: Int { groupsPerNode * Self.groupSize * Self.requestBytes }

    @usableFromInline func rankCount(_ node: Int) -> UnsafeMutablePointer<UInt64> {
        (nodeWords + node * LabMemory.alignment).assumingMemoryBound(to: UInt64.self)
    }

    @usableFromInline func requestBlock(_ node: Int) -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        (nodeWords + node * LabMemory.alignment + 8).assumingMemoryBound(to: UnsafeMutableRawPointer?.self)
    }

    /// On the client's thread (pinned): its rank in its node gives its request line and its group.
    public func makeContext(for thread: ThreadSlot) -> Context {
        let node = thread.node % nodeCount
        let rank = Int(cshims_u64_fetch_add_relaxed(rankCount(node), 1))
        precondition(rank < groupsPerNode * Self.groupSize, "ffwd: more contexts than clients")
        // The node's block: the first client to need it allocates (and zeroes) it. acq_rel: the
        // winner's zeroing happens-before a loser's writes into its own line; acquire on failure
        // likewise.
        var block = cshims_ptr_load_acquire(requestBlock(node))
        if block == nil {
            let mine = memory.allocate(bytes: nodeRequestBytes)
            if cshims_ptr_cas_acq_rel(requestBlock(node), &block, mine) {
                block = mine
            } else {
                memory.deallocate(mine, bytes: nodeRequestBytes)
            }
        }
        let group = node * groupsPerNode + rank / Self.groupSize
        return Context(request: block! + rank * Self.requestBytes,
                       response: responses + group * Self.responseBytes,
                       slot: rank % Self.groupSize, toggle: 0)
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
        // Every client made its context before the barrier: the groups in use, node by node
        // (their response line, first request line and clients).
        var sweepGroups: [(group: Int, requests: UnsafeMutableRawPointer, count: Int)] = []
        for node in 0..<nodeCount {
            let ranks = Int(cshims_u64_load_acquire(rankCount(node)))
            guard ranks > 0, let block = cshims_ptr_load_acquire(requestBlock(node)) else { continue }
            for k in 0..<(ranks + Self.groupSize - 1) / Self.groupSize {
                sweepGroups.append((node * groupsPerNode + k, block + k * Self.groupSize * Self.requestBytes,
                                    min(Self.groupSize, ranks - k * Self.groupSize)))
            }
        }
        var served: UInt64 = 0
        var idle = 0
        repeat {
            var sweep: UInt64 = 0
            for (g, groupRequests, count) in sweepGroups {
                let line = local + g &* words
                var bits = line[toggleWord]
                for c in 0..<count {
                    let request = groupRequests + c &* Self.requestBytes
                    let slot = UInt64(c)
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
        for node in 0..<nodeCount {
            if let block = cshims_ptr_load_acquire(requestBlock(node)) { memory.deallocate(block, bytes: nodeRequestBytes) }
        }
        memory.deallocate(nodeWords, bytes: nodeCount * LabMemory.alignment)
        memory.deallocate(responses, bytes: groups * Self.responseBytes)
        tally.deallocate(memory)
    }
}
