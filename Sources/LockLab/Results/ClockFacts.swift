// Whether the cycle counter can be trusted, as the kernel describes it: the facts the manifest
// records beside the calibrated cycles/ns, and the notes `run` and `sweep` print (issue 10, section 7).
//
// - Invariance (x86): `constant_tsc` (the TSC ticks at a fixed rate whatever the core's frequency)
//   and `nonstop_tsc` (it keeps ticking in deep C-states), flags in /proc/cpuinfo. Without both,
//   latencies in cycles change meaning with the frequency or across idle periods. On arm64 the
//   generic timer (cntvct_el0) runs at a fixed rate by the architecture.
// - The kernel's clocksource (/sys/devices/system/clocksource/clocksource0): CLOCK_MONOTONIC, which
//   calibrates the counter, comes from it; a kernel that distrusts the TSC switches away from `tsc`.
// - The CPU frequency governor and turbo state, where the machine exposes them (cpufreq in sysfs;
//   many VMs do not): anything but `performance` lets the frequency move during a run, and turbo
//   makes the frequency depend on how many cores are busy: throughput then scales with load for
//   reasons that are not the lock's.
// Every file is optional: a fact the machine does not expose is recorded as null, never guessed.

import Foundation

/// The cycle counter and frequency facts of this machine.
public struct ClockFacts: Codable, Sendable, Equatable {
    /// What `CycleClock.now()` reads: "tsc", "cntvct_el0" or "clock_monotonic".
    public var counter: String
    /// /proc/cpuinfo flags (x86); nil where the architecture has no such flag.
    public var constantTSC: Bool?
    public var nonstopTSC: Bool?
    /// True when the counter runs at a fixed rate through frequency changes and idle states.
    public var invariant: Bool?
    /// The kernel's current clocksource, and those it offers.
    public var clocksource: String?
    public var availableClocksources: String?
    /// The distinct cpufreq governors over the CPUs (usually one); nil where cpufreq is not exposed.
    public var governors: [String]?
    /// "on" or "off" where intel_pstate/no_turbo or cpufreq/boost exposes it; nil otherwise.
    public var turbo: String?

    enum CodingKeys: String, CodingKey {
        case counter, invariant, clocksource, governors, turbo
        case constantTSC = "constant_tsc"
        case nonstopTSC = "nonstop_tsc"
        case availableClocksources = "available_clocksources"
    }

    public init(counter: String, constantTSC: Bool? = nil, nonstopTSC: Bool? = nil, invariant: Bool? = nil,
                clocksource: String? = nil, availableClocksources: String? = nil, governors: [String]? = nil,
                turbo: String? = nil) {
        self.counter = counter
        self.constantTSC = constantTSC
        self.nonstopTSC = nonstopTSC
        self.invariant = invariant
        self.clocksource = clocksource
        self.availableClocksources = availableClocksources
        self.governors = governors
        self.turbo = turbo
    }

    /// Every key is written, a fact the machine does not expose as null: the manifest then says
    /// that it was looked for.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(counter, forKey: .counter)
        try c.encode(constantTSC, forKey: .constantTSC)
        try c.encode(nonstopTSC, forKey: .nonstopTSC)
        try c.encode(invariant, forKey: .invariant)
        try c.encode(clocksource, forKey: .clocksource)
        try c.encode(availableClocksources, forKey: .availableClocksources)
        try c.encode(governors, forKey: .governors)
        try c.encode(turbo, forKey: .turbo)
    }

    /// Reads the facts under `root` ("/" for this machine; a test passes a folder laid out like
    /// /proc and /sys). `architecture` defaults to the one this binary was built for.
    public static func read(root: String = "/", architecture: String = ClockFacts.buildArchitecture) -> ClockFacts {
        func file(_ path: String) -> String? {
            let full = (root as NSString).appendingPathComponent(path)
            guard let text = try? String(contentsOfFile: full, encoding: .utf8) else { return nil }
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            return trimmed.isEmpty ? nil : trimmed
        }
        var facts = ClockFacts(counter: "clock_monotonic")
        switch architecture {
        case "x86_64", "i386":
            facts.counter = "tsc"
            if let cpuinfo = file("proc/cpuinfo"),
               let flags = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) {
                let set = Set(flags.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).map(String.init))
                facts.constantTSC = set.contains("constant_tsc")
                facts.nonstopTSC = set.contains("nonstop_tsc")
                facts.invariant = facts.constantTSC! && facts.nonstopTSC!
            }
        case "arm64", "aarch64":
            facts.counter = "cntvct_el0"
            facts.invariant = true // the generic timer's rate is fixed by the architecture
        default:
            facts.invariant = true // CLOCK_MONOTONIC in ns
        }
        facts.clocksource = file("sys/devices/system/clocksource/clocksource0/current_clocksource")
        facts.availableClocksources = file("sys/devices/system/clocksource/clocksource0/available_clocksource")

        let cpuFolder = (root as NSString).appendingPathComponent("sys/devices/system/cpu")
        let cpus = ((try? FileManager.default.contentsOfDirectory(atPath: cpuFolder)) ?? [])
            .filter { $0.hasPrefix("cpu") && Int($0.dropFirst(3)) != nil }
        let governors = Set(cpus.compactMap { file("sys/devices/system/cpu/\($0)/cpufreq/scaling_governor") })
        facts.governors = governors.isEmpty ? nil : governors.sorted()
        if let noTurbo = file("sys/devices/system/cpu/intel_pstate/no_turbo") {
            facts.turbo = noTurbo == "1" ? "off" : "on"
        } else if let boost = file("sys/devices/system/cpu/cpufreq/boost") {
            facts.turbo = boost == "1" ? "on" : "off"
        }
        return facts
    }

    /// The facts of this machine, read once per process.
    public static let current = ClockFacts.read()

    public static var buildArchitecture: String {
        #if arch(x86_64)
        return "x86_64"
        #elseif arch(arm64)
        return "arm64"
        #elseif arch(i386)
        return "i386"
        #else
        return "other"
        #endif
    }

    /// Clocksources a hypervisor provides in place of the TSC: no sign of a TSC problem.
    static let paravirtualClocksources: Set<String> = ["kvm-clock", "xen", "hyperv_clocksource_tsc_page", "arch_sys_counter"]

    /// What a reader of the results must know, one line each: a counter that is not invariant, a
    /// clocksource that replaced an untrusted TSC, a governor other than `performance`, turbo on. Empty when nothing is amiss or nothing is known.
    public var notes: [String] {
        var notes: [String] = []
        if invariant == false {
            let missing = [constantTSC == false ? "constant_tsc" : nil, nonstopTSC == false ? "nonstop_tsc" : nil]
                .compactMap { $0 }.joined(separator: " and ")
            notes.append("the cycle counter (\(counter)) is not invariant (no \(missing) in /proc/cpuinfo): "
                + "latencies in cycles may change with the CPU frequency or stop in idle states")
        }
        // A kernel that found the TSC unreliable (marked it unstable at boot or at run time)
        // switches CLOCK_MONOTONIC to another clocksource; a VM's paravirtual clock is normal.
        if counter == "tsc", let clocksource, clocksource != "tsc", !Self.paravirtualClocksources.contains(clocksource) {
            notes.append("the kernel's clocksource is \(clocksource), not tsc: it may have found the TSC unstable "
                + "(see dmesg), so cycle counts may not be comparable across CPUs")
        }
        if let governors, governors != ["performance"] {
            notes.append("CPU frequency governor \(governors.joined(separator: ", ")), not performance: "
                + "the frequency may change during runs (cpupower frequency-set -g performance)")
        }
        if turbo == "on" {
            notes.append("turbo is on: the frequency depends on how many cores are busy, so scaling mixes the lock's "
                + "cost with the clock's")
        }
        return notes
    }
}
