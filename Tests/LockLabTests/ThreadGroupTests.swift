// ThreadGroup (Sources/LockLab/Platform/ThreadGroup.swift): the one thread machinery of runs and
// torture. A thread that cannot be created or pinned ends the group cleanly: an error with the
// reason, the threads already started stopped and joined; a run ends as `failed` with the reason.

import CShims
import Foundation
import Synchronization
import Testing
@testable import LockLab

@Suite("ThreadGroup", .serialized)
struct ThreadGroupTests {
    /// Counts the bodies that ran and that saw the stop at the barrier.
    final class Tally: Sendable {
        let entered = Atomic<Int>(0)
        let stoppedAtBarrier = Atomic<Int>(0)
    }

    @Test func testGroupRunsEveryThreadThroughThePhases() throws {
        let tally = Tally()
        let group = ThreadGroup(slots: (0..<3).map { ThreadSlot(index: $0, cpu: nil, node: 0) })
        try group.start { slot, control in
            tally.entered.add(1, ordering: .relaxed)
            _ = control.arriveAndWait()
            var ops: UInt64 = 0
            while control.currentPhase() != GroupPhase.stop {
                ops += 1
                if ops & 255 == 0 { cshims_u64_store_relaxed(control.progress(slot.index), ops) }
            }
        }
        try group.waitUntilReady()
        group.setPhase(GroupPhase.measure)
        usleep(20_000)
        group.setPhase(GroupPhase.stop)
        #expect(group.waitForFinish(stallTimeoutSeconds: 30))
        group.join()
        #expect(tally.entered.load(ordering: .relaxed) == 3)
    }

    @Test func testFailedThreadCreationStopsTheStartedThreads() throws {
        let tally = Tally()
        let group = ThreadGroup(slots: (0..<4).map { ThreadSlot(index: $0, cpu: nil, node: 0) })
        group.simulatedCreateFailure = 2
        #expect(throws: ThreadGroupError.cannotCreate(thread: 2, errno: EAGAIN)) {
            try group.start { _, control in
                tally.entered.add(1, ordering: .relaxed)
                if control.arriveAndWait() == GroupPhase.abort { tally.stoppedAtBarrier.add(1, ordering: .relaxed) }
            }
        }
        // Threads 0 and 1 started, met the abort at the barrier and were joined before the throw.
        #expect(tally.entered.load(ordering: .relaxed) == 2)
        #expect(tally.stoppedAtBarrier.load(ordering: .relaxed) == 2)
    }

    @Test func testUnpinnableThreadFailsTheGroupCleanly() throws {
        let tally = Tally()
        let group = ThreadGroup(slots: [ThreadSlot(index: 0, cpu: nil, node: 0), ThreadSlot(index: 1, cpu: 100_000, node: 0)])
        try group.start { _, control in
            tally.entered.add(1, ordering: .relaxed)
            if control.arriveAndWait() == GroupPhase.abort { tally.stoppedAtBarrier.add(1, ordering: .relaxed) }
        }
        do {
            try group.waitUntilReady()
            Issue.record("a thread pinned to CPU 100000 was accepted")
        } catch let error as ThreadGroupError {
            guard case let .cannotPin(thread, cpu, _) = error else { Issue.record("\(error)"); return }
            #expect(thread == 1 && cpu == 100_000)
        }
        #expect(tally.entered.load(ordering: .relaxed) == 1) // the unpinnable thread never ran its body
        #expect(tally.stoppedAtBarrier.load(ordering: .relaxed) == 1)
    }

    @Test func testRunWithAThreadThatCannotStartEndsFailedWithTheReason() throws {
        let spec = try LockSpec(parsing: "tas")
        let config = RunConfig(spec: spec, threads: [ThreadSlot(index: 0, cpu: nil, node: 0), ThreadSlot(index: 1, cpu: 100_000, node: 0)],
                               length: .iterations(perThread: 1000), sampleEvery: 0)
        let result = try spec.entry.run(config, MicrobenchmarkParameters())
        #expect(result.status == .failed)
        #expect(result.failure?.contains("cannot pin thread 1 to CPU 100000") == true, "\(result.failure ?? "no reason")")
        #expect(RunSummary(result).status == .failed)
    }

    @Test func testPlanReservesHelperCPUsBeforeTheClients() throws {
        let topology = try Topology.load(.synthetic("pack:1 numa:2 core:2 pu:1"))
        let plan = try topology.plan(threads: 3, placement: .compact, helpers: 1)
        #expect(plan.helpers.count == 1)
        #expect(plan.helperSlots.map(\.index) == [3])
        let helperCPU = plan.helpers[0].cpu
        #expect(!plan.threads.contains { $0.cpu == helperCPU })
        #expect(plan.slots.map(\.index) == [0, 1, 2])
        #expect(throws: LabError.self) { try topology.plan(threads: 1, placement: .compact, helpers: 4) }
    }
}
