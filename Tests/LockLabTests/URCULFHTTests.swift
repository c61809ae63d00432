// urcu-lfht (RCU/URCULFHT.swift, Workloads/URCULFHashTable.swift): liburcu's cds_lfht on the
// hashtable workload passes the harness's checks (the updates replayed on the locked twin's model,
// every read inside its version window, every response, the table's invariants and contents) at
// 1, 2 and 4 threads, reads 50 and 99 %, over each of liburcu's flavours; it is refused in one line
// on any other workload; and the shim's wrappers (rcu_dereference, rcu_assign_pointer,
// rcu_xchg_pointer, call_rcu, rcu_barrier) do what liburcu says: a call_rcu callback does not run
// while a reader that began before it is still in its section, and has run after rcu_barrier.

import CShims
import CURCU
import Foundation
import Testing
@testable import LockLab

private func slots(_ n: Int) -> [ThreadSlot] { (0..<n).map { ThreadSlot(index: $0, cpu: nil, node: 0) } }

/// The flag word a test callback sets: the 8 bytes after the rcu_head it is called with.
private func flag(after head: UnsafeMutableRawPointer) -> UnsafeMutablePointer<UInt64> {
    (head + MemoryLayout<rcu_head>.stride).assumingMemoryBound(to: UInt64.self)
}

private let setFlag: @convention(c) (UnsafeMutablePointer<rcu_head>?) -> Void = { head in
    cshims_u64_store_release(flag(after: UnsafeMutableRawPointer(head!)), 1)
}

@Suite("RCU urcu-lfht", .serialized)
struct URCULFHTTests {
    @Test("urcu-lfht is registered as a structure of its own: not an RCU flavour, not in `all`, hashtable only")
    func testRegistered() throws {
        let entry = try #require(LockRegistry.lookup("urcu-lfht"))
        #expect(entry.onlyWorkload == .hashtable)
        #expect(entry.readSharing == .optimistic)
        #expect(!entry.isRCU)
        #expect(!LockRegistry.lockNames.contains("urcu-lfht"))
        #expect(entry.descriptor.options.map(\.key) == ["flavour"])
        #expect(entry.descriptor.options[0].choices == ["memb", "qsbr", "mb", "bp"])
    }

    @Test("urcu-lfht passes the harness's checks on hashtable: 1, 2, 4 threads, reads 50 and 99 %",
          arguments: ["memb", "qsbr", "mb", "bp"])
    func testPassesTheChecks(flavour: String) throws {
        try ThreadSanitizer.skipIfBlind("urcu-lfht")
        let lock = "urcu-lfht:flavour=\(flavour)"
        for threads in [1, 2, 4] {
            for ratio in [50, 99] {
                let perThread = ThreadSanitizer.scaled(threads > Int(cshims_online_cpus()) ? 1_000 : 3_000)
                let config = RunConfig(spec: try LockSpec(parsing: lock), threads: slots(threads), nodeCount: 1,
                                       length: .iterations(perThread: perThread), sampleEvery: 4, logOperations: true)
                let workload = try WorkloadSpec(parsing: "hashtable:keys=64:read-ratio=\(ratio)")
                let result = try config.spec.entry.run(config, workload)
                #expect(result.status == .ok, "\(lock) at \(threads) threads, \(ratio) % reads: \(result.failure ?? "")")
                let reads = result.threads.reduce(UInt64(0)) { $0 + $1.totalReads }
                #expect(reads > 0)
                #expect(result.counter == UInt64(threads * perThread) - reads)
            }
        }
    }

    @Test("the model check holds urcu-lfht to the locked twin's results: a run's contents are the model's")
    func testContentsMatchTheModel() throws {
        // Sequentially: every result, and the final contents, are the Dictionary model's.
        let w = try URCULFHashTableWorkload<URCUMemb>(WorkloadEnvironment(threads: 1), keys: 16, readPercent: 30,
                                                       outside: OutsideWork(nanoseconds: 0, random: false))
        var model = w.makeModel()
        var state = w.makeThreadState(for: ThreadSlot(index: 0, cpu: nil, node: 0), seed: 9)
        curcu_memb_register_thread()
        for _ in 0..<5_000 {
            let op = w.nextOperation(&state)
            curcu_memb_read_lock()
            let result = w.structure.apply(op)
            curcu_memb_read_unlock()
            #expect(result == model.apply(op), "op \(op.code) key \(op.arg0)")
        }
        curcu_memb_unregister_thread()
        #expect(w.contents() == model.contents())
        #expect(w.invariantFailure(applied: 0) == nil)
        w.deallocate()
    }

    @Test("urcu-lfht is refused, in one line, on every workload but hashtable")
    func testRefusedElsewhere() throws {
        let spec = try LockSpec(parsing: "urcu-lfht")
        for text in ["snapshot", "list", "counter", "micro"] {
            let workload = try WorkloadSpec(parsing: text)
            let refusal = try #require(workload.pairingRefusal(spec))
            #expect(refusal.contains("only the hashtable workload") && !refusal.contains("\n"))
            let config = RunConfig(spec: spec, threads: slots(1), length: .iterations(perThread: 10))
            #expect(throws: LabError.self) { try spec.entry.run(config, workload) }
        }
        #expect(try WorkloadSpec(parsing: "hashtable:read-ratio=90").pairingRefusal(spec) == nil)
    }

    @Test("the shim's pointer wrappers: assign publishes, dereference loads, xchg returns the old pointer")
    func testPointerWrappers() {
        let a = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        let b = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        defer { a.deallocate(); b.deallocate() }
        var slot: UnsafeMutableRawPointer? = nil
        curcu_assign_pointer(&slot, a)
        #expect(curcu_dereference(&slot) == a)
        #expect(curcu_xchg_pointer(&slot, b) == a)
        #expect(curcu_dereference(&slot) == b)
    }

    @Test("call_rcu (memb): the callback waits for a reader that began before it, and has run after rcu_barrier")
    func testCallRCUWaitsForReaders() {
        let block = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
        defer { block.deallocate() }
        block.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
        curcu_memb_register_thread()
        curcu_memb_read_lock()
        curcu_memb_call_rcu(block.assumingMemoryBound(to: rcu_head.self), setFlag)
        // liburcu's call_rcu thread now waits for a grace period, which this reader holds up.
        usleep(50_000)
        #expect(cshims_u64_load_acquire(flag(after: block)) == 0, "a call_rcu callback ran under a reader that began before it")
        curcu_memb_read_unlock()
        curcu_memb_synchronize_rcu()
        curcu_memb_barrier()
        #expect(cshims_u64_load_acquire(flag(after: block)) == 1, "rcu_barrier returned before the callback ran")
        curcu_memb_unregister_thread()
    }

    @Test("call_rcu and rcu_barrier through every flavour's LiburcuFlavor")
    func testEveryFlavourBarrier() throws {
        func check<F: LiburcuFlavor>(_ flavor: F.Type) throws {
            let f = try F(threads: 1, memory: LabMemory(), options: LockOptions())
            let block = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
            defer { block.deallocate() }
            block.initializeMemory(as: UInt8.self, repeating: 0, count: 64)
            var reader = f.register(thread: 0)
            F.callRCU(block.assumingMemoryBound(to: rcu_head.self), setFlag)
            F.barrier()
            #expect(cshims_u64_load_acquire(flag(after: block)) == 1, "\(F.name): rcu_barrier returned before the callback ran")
            f.unregister(&reader)
        }
        try check(URCUMemb.self)
        try check(URCUQSBR.self)
        try check(URCUMB.self)
        try check(URCUBP.self)
    }

    @Test("the manifest records whether private expedited membarrier is available")
    func testManifestRecordsMembarrier() throws {
        let machine = MachineInfo.current()
        #expect(machine.membarrierPrivateExpedited == MembRCU.membarrierAvailable)
        let json = String(decoding: try JSONEncoder().encode(machine), as: UTF8.self)
        #expect(json.contains("\"membarrier_private_expedited\":\(MembRCU.membarrierAvailable)"))
        // liburcu's own view (its constructor's registration) agrees with the lab's probe.
        #expect((curcu_memb_has_sys_membarrier() != 0) == MembRCU.membarrierAvailable)
    }
}
