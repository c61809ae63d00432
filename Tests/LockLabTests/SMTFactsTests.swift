// The manifest's SMT facts (Manifest.swift, SMTFacts): the kernel's switch and the allowed CPUs
// that share a core, so that a run on two hardware threads of one core is told from two cores.

import Foundation
import Testing
@testable import LockLab

@Suite("Manifest: SMT facts")
struct SMTFactsTests {
    @Test func testCPUListsParse() {
        #expect(SMTFacts.parseCPUList("0-3,8") == [0, 1, 2, 3, 8])
        #expect(SMTFacts.parseCPUList("") == [])
        #expect(SMTFacts.parseCPUList("5") == [5])
        #expect(SMTFacts.parseCPUList("3-1,x") == [])
    }

    @Test func testThisMachineIsRecorded() throws {
        let smt = try #require(MachineInfo.current().smt)
        #expect(!smt.allowedCPUs.isEmpty)
        #expect(smt.allowedSharingACore >= 0 && smt.allowedSharingACore <= SMTFacts.parseCPUList(smt.allowedCPUs).count)
        let json = String(decoding: try JSONEncoder().encode(MachineInfo.current()), as: UTF8.self)
        #expect(json.contains("\"allowed_sharing_a_core\""))
    }
}
