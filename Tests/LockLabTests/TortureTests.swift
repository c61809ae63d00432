// Torture (Sources/LockLab/Harness/Torture.swift and `locklab torture`): it catches a lock that does
// not exclude at once, passes a correct one while driving every entry point the lock offers, fails
// loudly through the command line, and refuses bad flags with one line and exit code 2.

import Foundation
import Testing
@testable import LockLab

@Suite("Torture", .serialized)
struct TortureTests {
    @Test("torture catches a lock that does not exclude, at once",
          .enabled(if: !ThreadSanitizer.isActive, "races on purpose: ThreadSanitizer would report it"))
    func testTortureCatchesALockThatDoesNotExclude() throws {
        let config = TortureConfig(spec: try LockSpec(parsing: "no-lock"), threads: 4, durationSeconds: 20)
        let started = Date()
        let result = try Torture.run(NotALock.self, config: config)
        guard case let .violation(what) = result.verdict else {
            Issue.record("a lock that excludes nothing passed torture: \(result)")
            return
        }
        // Named: the thread, how it came in, who else was inside.
        #expect(what.contains("thread "), "\(what)")
        #expect(result.verdict.message.hasPrefix("mutual exclusion violated: "))
        #expect(result.lock == "not-a-lock")
        // Detected at the first overlap, not at the end of the 20 s.
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test func testTorturePassesTicketAndDrivesEveryEntryPoint() throws {
        let entry = try #require(LockRegistry.lookup("ticket"))
        // One thread per CPU of a 2-CPU machine: many acquisitions in half a second even on a busy
        // machine (oversubscribed, a FIFO spin lock manages a few hundred a second).
        let config = TortureConfig(spec: try LockSpec(parsing: "ticket"), threads: 2, durationSeconds: 0.5, seed: 7)
        let result = try entry.torture(config)
        #expect(result.verdict == .passed, "\(result.verdict.message)")
        #expect(result.counter == result.acquisitions)
        #expect(result.acquisitions == result.lockCalls + result.withLockCalls + result.trylockSuccesses)
        #expect(result.lockCalls > 0 && result.withLockCalls > 0)
        #expect(result.trylockAttempts > 0 && result.trylockSuccesses > 0)
        #expect(result.trylockSuccesses <= result.trylockAttempts)
        #expect(result.yieldsHolding > 0)
        #expect(result.minThreadAcquisitions > 0)
    }

    @Test func testALockWithoutSeparateLockAndUnlockIsTorturedThroughWithLockOnly() throws {
        try ThreadSanitizer.skipIfBlind("swift-mutex")
        let entry = try #require(LockRegistry.lookup("swift-mutex"))
        let result = try entry.torture(TortureConfig(spec: try LockSpec(parsing: "swift-mutex"), threads: 3,
                                                     durationSeconds: 0.3))
        #expect(result.verdict == .passed, "\(result.verdict.message)")
        #expect(result.lockCalls == 0 && result.trylockAttempts == 0)
        #expect(result.withLockCalls == result.acquisitions && result.acquisitions > 0)
    }

    @Test func testALockLimitedToOneThreadIsTorturedWithOne() throws {
        let result = try LockRegistry.lookup("no-lock")!.torture(
            TortureConfig(spec: try LockSpec(parsing: "no-lock"), threads: 4, durationSeconds: 0.1))
        #expect(result.threads == 1)
        #expect(result.verdict == .passed)
    }

    @Test func testCommandLinePrintsPerLockCountsAndPasses() throws {
        let result = try locklab(["torture", "--lock", "tas,mcs", "--seconds", "0.2", "--threads", "3"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.contains("trylock ok") && $0.contains("acquisitions") })
        for lock in ["tas", "mcs"] {
            #expect(lines.contains { $0.hasPrefix(lock + " ") && $0.hasSuffix("ok") }, "\(result.stdout)")
        }
        #expect(result.stdout.contains("every lock passed"))
    }

    @Test func testCommandLineFailsLoudlyWithOneLineNamingTheLock() throws {
        // LOCKLAB_FAULT_HANG makes tas hang (thread 0 holds it forever); ticket still runs and passes.
        let result = try locklab(["torture", "--lock", "tas,ticket", "--seconds", "0.3", "--threads", "2",
                                  "--stall-timeout", "0.5"], environment: ["LOCKLAB_FAULT_HANG": "tas"])
        #expect(result.status == 1)
        let errors = result.stderr.split(separator: "\n")
        #expect(errors.count == 1, "\(result.stderr)")
        #expect(errors.first?.hasPrefix("locklab: torture: tas: hung: ") == true, "\(result.stderr)")
        #expect(errors.first?.contains("2 of 2 threads stuck") == true, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n").contains { $0.hasPrefix("ticket ") && $0.hasSuffix("ok") })
    }

    static let badInputs: [([String], String)] = [
        (["torture"], "--lock"),
        (["torture", "--lock", "nosuch"], "unknown lock 'nosuch'"),
        (["torture", "--lock", "mcs:depth=1"], "has no option 'depth'"),
        (["torture", "--lock", "tas", "--seconds", "0"], "--seconds: '0.0' is not valid"),
        (["torture", "--lock", "tas", "--seconds", "-1"], "--seconds: '-1.0' is not valid"),
        (["torture", "--lock", "tas", "--seconds", "inf"], "--seconds: 'inf' is not valid"),
        (["torture", "--lock", "tas", "--seconds", "nan"], "--seconds: 'nan' is not valid"),
        (["torture", "--lock", "tas", "--seconds", "soon"], "soon"),
        (["torture", "--lock", "tas", "--threads", "0"], "--threads: '0' is not valid"),
        (["torture", "--lock", "tas", "--threads", "-2"], "--threads: '-2' is not valid"),
        (["torture", "--lock", "tas", "--threads", "100000000"], "--threads: '100000000' is not valid"),
        (["torture", "--lock", "tas", "--threads", "4", "--nodes", "0"], "--nodes: '0' is not valid"),
        (["torture", "--lock", "tas", "--threads", "4", "--nodes", "5"], "--nodes: '5' is not valid"),
        (["torture", "--lock", "tas", "--stall-timeout", "0"], "--stall-timeout: '0.0' is not valid"),
        (["torture", "--lock", "tas", "--seed", "-1"], "-1"),
    ]

    @Test("torture bad input: one line, exit 2", arguments: badInputs.indices)
    func testTortureBadInputGivesOneLineAndExitCode2(index: Int) throws {
        let (arguments, mention) = Self.badInputs[index]
        let result = try locklab(arguments)
        #expect(result.status == 2, "\(arguments): exit \(result.status)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains(mention), "\(arguments): \(result.stderr)")
        #expect(result.stdout.isEmpty, "\(arguments) started: \(result.stdout)")
    }
}
