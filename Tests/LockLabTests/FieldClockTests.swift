// Issue 10, section 7: the manifest says whether the cycle counter can be trusted (invariant TSC,
// clocksource, governor, turbo), and `run` notes what is amiss. Machines are faked as folders laid
// out like /proc and /sys.

import Foundation
import Testing
@testable import LockLab

/// A fake root with the given files (path relative to "/", contents).
private func fakeRoot(_ name: String, _ files: [String: String]) throws -> String {
    let root = temporaryDirectory("clock-\(name)")
    for (path, text) in files {
        let full = (root as NSString).appendingPathComponent(path)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    return root
}

private let invariantCPU = "processor\t: 0\nflags\t\t: fpu tsc constant_tsc nonstop_tsc rdtscp\n\nprocessor\t: 1\nflags\t\t: fpu tsc constant_tsc nonstop_tsc\n"
private let oldCPU = "processor\t: 0\nflags\t\t: fpu tsc rdtscp\n"
private let constantOnlyCPU = "processor\t: 0\nflags\t\t: fpu tsc constant_tsc\n"

@Suite("Field: cycle counter and frequency facts")
struct ClockFactsTests {
    @Test func testInvariantTSCWithPerformanceGovernorGivesNoNote() throws {
        let root = try fakeRoot("good", [
            "proc/cpuinfo": invariantCPU,
            "sys/devices/system/clocksource/clocksource0/current_clocksource": "tsc\n",
            "sys/devices/system/clocksource/clocksource0/available_clocksource": "tsc hpet acpi_pm \n",
            "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "performance\n",
            "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor": "performance\n",
            "sys/devices/system/cpu/intel_pstate/no_turbo": "1\n",
        ])
        let facts = ClockFacts.read(root: root, architecture: "x86_64")
        #expect(facts.constantTSC == true && facts.nonstopTSC == true && facts.invariant == true)
        #expect(facts.clocksource == "tsc")
        #expect(facts.availableClocksources == "tsc hpet acpi_pm")
        #expect(facts.governors == ["performance"])
        #expect(facts.turbo == "off")
        #expect(facts.notes.isEmpty)
    }

    @Test func testCounterWithoutInvarianceFlagsIsNoted() throws {
        for (cpuinfo, missing) in [(oldCPU, "constant_tsc and nonstop_tsc"), (constantOnlyCPU, "nonstop_tsc")] {
            let root = try fakeRoot("old", ["proc/cpuinfo": cpuinfo,
                                            "sys/devices/system/clocksource/clocksource0/current_clocksource": "hpet"])
            let facts = ClockFacts.read(root: root, architecture: "x86_64")
            #expect(facts.invariant == false)
            #expect(facts.clocksource == "hpet")
            #expect(facts.notes.count == 2)
            #expect(facts.notes.first?.contains("not invariant (no \(missing)") == true, "\(facts.notes)")
            #expect(facts.notes.last?.contains("clocksource is hpet, not tsc") == true, "\(facts.notes)")
        }
    }

    @Test func testAKernelThatLeftTheTSCIsNotedButAVMClockIsNot() throws {
        for (source, noted) in [("acpi_pm", true), ("hpet", true), ("kvm-clock", false), ("xen", false), ("tsc", false)] {
            let root = try fakeRoot("cs-\(source)", ["proc/cpuinfo": invariantCPU,
                                                   "sys/devices/system/clocksource/clocksource0/current_clocksource": source])
            let facts = ClockFacts.read(root: root, architecture: "x86_64")
            #expect(facts.notes.contains { $0.contains("clocksource is \(source)") } == noted, "\(source): \(facts.notes)")
        }
    }

    @Test func testGovernorOtherThanPerformanceAndTurboOnAreNoted() throws {
        let root = try fakeRoot("powersave", [
            "proc/cpuinfo": invariantCPU,
            "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "powersave",
            "sys/devices/system/cpu/cpu1/cpufreq/scaling_governor": "performance",
            "sys/devices/system/cpu/cpufreq/boost": "1",
        ])
        let facts = ClockFacts.read(root: root, architecture: "x86_64")
        #expect(facts.governors == ["performance", "powersave"])
        #expect(facts.turbo == "on")
        #expect(facts.notes.count == 2)
        #expect(facts.notes.contains { $0.contains("governor performance, powersave, not performance") })
        #expect(facts.notes.contains { $0.hasPrefix("turbo is on") })
    }

    @Test func testAMachineThatExposesNothingRecordsNullsAndNoNote() throws {
        // A VM without cpufreq or clocksource files, or a container without /sys: nothing guessed.
        let root = try fakeRoot("bare", [:])
        let facts = ClockFacts.read(root: root, architecture: "x86_64")
        #expect(facts.counter == "tsc")
        #expect(facts.invariant == nil && facts.constantTSC == nil)
        #expect(facts.clocksource == nil && facts.governors == nil && facts.turbo == nil)
        #expect(facts.notes.isEmpty)
        let json = String(decoding: try JSONEncoder().encode(facts), as: UTF8.self)
        for key in ["constant_tsc", "nonstop_tsc", "invariant", "clocksource", "governors", "turbo"] {
            #expect(json.contains("\"\(key)\":null"), "\(json)")
        }
        let arm = ClockFacts.read(root: root, architecture: "arm64")
        #expect(arm.counter == "cntvct_el0" && arm.invariant == true && arm.notes.isEmpty)
    }

    @Test func testOldManifestsWithoutClockFactsStillRead() throws {
        let machine = MachineInfo.current()
        var old = try JSONSerialization.jsonObject(with: JSONEncoder().encode(machine)) as! [String: Any]
        old.removeValue(forKey: "clock")
        let decoded = try JSONDecoder().decode(MachineInfo.self, from: JSONSerialization.data(withJSONObject: old))
        #expect(decoded.clock == nil)
        #expect(decoded.host == machine.host)
    }

    @Test func testRunRecordsTheFactsAndPrintsTheirNotes() throws {
        let dir = temporaryDirectory("clock-run")
        let result = try locklab(["run", "--lock", "tas", "--threads", "1", "--duration", "0.02", "--warmup", "0", "--out", dir])
        #expect(result.status == 0, "\(result.stderr)")
        let data = try #require(FileManager.default.contents(atPath: dir + "/manifest.json"))
        let manifest = try JSONDecoder().decode(Manifest.self, from: data)
        let facts = try #require(manifest.machine.clock)
        #expect(facts == ClockFacts.current)
        for note in facts.notes { #expect(result.stdout.contains("note: \(note)")) }
        if facts.notes.isEmpty { #expect(!result.stdout.contains("invariant") && !result.stdout.contains("governor")) }
    }
}
