// `locklab validate` (Validator.swift): passes what excludes, catches what does not, skips and says
// a refused pairing, and its command line prints one row per case.

import Foundation
import Testing
@testable import LockLab

@Suite("Validator", .serialized)
struct ValidatorTests {
    @Test("a correct lock and executor pass every check on a structure, reads included")
    func testCorrectLocksPass() throws {
        for lock in ["mcs", "rwlock", "cc-synch"] {
            let o = try Validator.validate(try LockSpec(parsing: lock), workload: try WorkloadSpec(parsing: "hashtable:keys=64:read-ratio=50"),
                                           threads: 2, nodes: 2, seconds: 0.3, seed: 1)
            #expect(o.verdict == .passed, "\(lock): \(o.verdict)")
            #expect(o.runs >= 1 && o.operations >= UInt64(2 * Validator.firstPerThread))
            #expect(o.checks.contains("model") && o.checks.contains("responses"))
            #expect(o.checks.contains("reads") == (lock == "rwlock"))
        }
    }

    @Test("a lock that excludes nothing fails, with its seed named",
          .enabled(if: !ThreadSanitizer.isActive, "races on purpose: ThreadSanitizer would report it"))
    func testBrokenLockFails() throws {
        // The planted lock under a registered name's spec (the spec gives the label and options).
        // On counter, not queue: two threads inside a linked queue at once can tear an index
        // between its nil test and its use and trap (Int(UInt64.max)) before any check runs.
        let o = try Validator.validate(try LockSpec(parsing: "ttas"), entry: LockEntry(NotALock.self),
                                       workload: try WorkloadSpec(parsing: "counter"), threads: 2, nodes: 2, seconds: 5, seed: 7)
        guard case .failed(let why) = o.verdict else { Issue.record("not caught: \(o.verdict)"); return }
        #expect(why.contains("seed"), "\(why)")
    }

    @Test("a refused pairing and a thread count beyond the lock are skipped, with the reason")
    func testSkips() throws {
        let refused = try Validator.validate(try LockSpec(parsing: "seqlock"), workload: try WorkloadSpec(parsing: "hashtable"),
                                             threads: 2, nodes: 2, seconds: 0.1, seed: 1)
        guard case .skipped(let why) = refused.verdict else { Issue.record("\(refused.verdict)"); return }
        #expect(why.contains("hashtable") && refused.runs == 0)
        let one = try Validator.validate(try LockSpec(parsing: "no-lock"), workload: .micro(MicrobenchmarkParameters(csLines: 1)),
                                         threads: 2, nodes: 1, seconds: 0.1, seed: 1)
        #expect(one.runs == 0)
    }

    @Test("locklab validate: a row per case, exit 0 when all pass")
    func testCommandLine() throws {
        let r = try locklab(["validate", "--lock", "mcs,seqlock", "--workload", "queue,hashtable", "--threads", "1,2", "--seconds", "0.2"])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = r.stdout.split(separator: "\n").filter { $0.hasPrefix("mcs ") || $0.hasPrefix("seqlock ") }
        #expect(rows.count == 8, "\(r.stdout)")
        #expect(rows.filter { $0.hasSuffix("ok") }.count == 6)
        #expect(rows.filter { $0.contains("skipped") }.count == 2)
        #expect(r.stdout.contains("validate: 6 passed, 0 failed, 2 skipped"))
    }
}
