// manifest.json: the machine and the build a results folder came from, and every command that
// wrote into it. A folder holds one machine and one build; mixing is refused unless asked.

import Foundation

/// Facts about this machine and this build, gathered once per process.
public struct MachineInfo: Codable, Sendable, Equatable {
    public var host: String
    public var cpuModel: String
    public var kernel: String
    public var onlineCPUs: Int
    public var memoryGiB: Double
    public var numaAvailable: Bool
    public var realNumaNodes: Int
    public var cyclesPerNanosecond: Double
    /// Whether the cycle counter is invariant, the clocksource, governor and turbo state (nil in
    /// manifests written before they were recorded).
    public var clock: ClockFacts?
    /// Whether memory policies can be set ("settable", or why not: a seccomp profile that denies
    /// mbind leaves `numa_available` true); nil in older manifests.
    public var memoryPolicy: String?
    /// The machine's shape as the kernel describes it (sysfs), whatever this process may use:
    /// e.g. "1 package, 2 cores, 2 PUs, 1 NUMA node, L3 32 MiB". Nil in manifests written before it.
    public var topologyFingerprint: String?
    /// What tells machines apart: 16 hex digits of FNV-1a over the CPU model, the topology
    /// fingerprint and the kernel release (not the host name: a renamed host is the same machine,
    /// two VMs called `vm` on an EPYC and a Xeon are not). runs.csv's `machine_id`.
    public var machineID: String?
    /// Simultaneous multithreading as the kernel reports it and as it touches the CPUs this process
    /// was allowed (nil in manifests written before it).
    public var smt: SMTFacts?
    /// Whether the kernel lets this process register for private expedited membarrier(2)
    /// (MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED succeeded): where it did not, rcu-memb's readers
    /// fence instead (MembRCU.swift) and liburcu's urcu-memb and urcu-bp fall back the same way.
    /// Nil in manifests written before it.
    public var membarrierPrivateExpedited: Bool? = nil

    enum CodingKeys: String, CodingKey {
        case host, kernel, clock, smt
        case membarrierPrivateExpedited = "membarrier_private_expedited"
        case memoryPolicy = "mem_policy"
        case cpuModel = "cpu_model"
        case onlineCPUs = "online_cpus"
        case memoryGiB = "memory_gib"
        case numaAvailable = "numa_available"
        case realNumaNodes = "real_numa_nodes"
        case cyclesPerNanosecond = "cycles_per_ns"
        case topologyFingerprint = "topology_fingerprint"
        case machineID = "machine_id"
    }

    /// This machine, read once per process (uname, /proc/cpuinfo, sysfs; nothing is spawned).
    public static func current() -> MachineInfo { cached }

    private static let cached: MachineInfo = {
        var uts = utsname()
        uname(&uts)
        let kernel = withUnsafeBytes(of: &uts.release) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        let host = withUnsafeBytes(of: &uts.nodename) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        var model = "unknown"
        if let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            model = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let fingerprint = SysfsTopology.fingerprint()
        return MachineInfo(
            host: host, cpuModel: model, kernel: kernel,
            onlineCPUs: ProcessInfo.processInfo.activeProcessorCount,
            memoryGiB: (Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824 * 10).rounded() / 10,
            numaAvailable: LabMemory.numaAvailable, realNumaNodes: LabMemory.realNodeCount,
            cyclesPerNanosecond: (CycleClock.cyclesPerNanosecond * 1000).rounded() / 1000,
            clock: ClockFacts.current, memoryPolicy: LabMemory.policyProbe,
            topologyFingerprint: fingerprint,
            machineID: machineID(cpuModel: model, topologyFingerprint: fingerprint, kernel: kernel),
            smt: SMTFacts.current(), membarrierPrivateExpedited: MembRCU.membarrierAvailable)
    }()

    /// The machine id of a CPU model, topology fingerprint and kernel release.
    public static func machineID(cpuModel: String, topologyFingerprint: String, kernel: String) -> String {
        fnv1a64Hex([cpuModel, topologyFingerprint, kernel].joined(separator: "\n"))
    }

    /// Why results of `other` must not join results of `self`, or nil when both are one machine.
    public func difference(from other: MachineInfo) -> String? {
        guard let mine = machineID else {
            return "an unidentified machine '\(host)' (written before machine ids)"
        }
        guard mine != other.machineID else { return nil }
        var what: [String] = []
        if cpuModel != other.cpuModel { what.append("CPU '\(cpuModel)', not '\(other.cpuModel)'") }
        if (topologyFingerprint ?? "") != (other.topologyFingerprint ?? "") {
            what.append("topology '\(topologyFingerprint ?? "")', not '\(other.topologyFingerprint ?? "")'")
        }
        if kernel != other.kernel { what.append("kernel \(kernel), not \(other.kernel)") }
        return "machine \(mine) (\(what.joined(separator: "; "))), not \(other.machineID ?? "?")"
    }
}

/// SMT (hyper-threading) facts: the kernel's switch (/sys/devices/system/cpu/smt/control: on, off,
/// forceoff, notsupported, notimplemented; active 0 or 1) and, for the CPUs this process may run on
/// (/proc/self/status Cpus_allowed_list), how many share a core with another allowed CPU
/// (topology/thread_siblings_list): a run pinned to two such CPUs measures two hardware threads of
/// one core, not two cores. A Slurm `--exclusive` allocation means no other job, not one thread per core.
public struct SMTFacts: Codable, Sendable, Equatable {
    public var control: String?
    public var active: Bool?
    /// The allowed CPUs, as a list (`0-3,8`).
    public var allowedCPUs: String
    /// Allowed CPUs whose core has another allowed CPU (0: every allowed CPU is a core of its own).
    public var allowedSharingACore: Int

    enum CodingKeys: String, CodingKey {
        case control, active
        case allowedCPUs = "allowed_cpus"
        case allowedSharingACore = "allowed_sharing_a_core"
    }

    static func current(root: String = "/sys/devices/system/cpu") -> SMTFacts {
        func read(_ path: String) -> String? {
            (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var allowedText = ""
        if let status = read("/proc/self/status"),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) {
            allowedText = line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces)
        }
        let allowed = Set(parseCPUList(allowedText))
        var sharing = 0
        for cpu in allowed {
            let siblings = parseCPUList(read("\(root)/cpu\(cpu)/topology/thread_siblings_list") ?? "")
            if siblings.contains(where: { $0 != cpu && allowed.contains($0) }) { sharing += 1 }
        }
        return SMTFacts(control: read("\(root)/smt/control"), active: read("\(root)/smt/active").map { $0 == "1" },
                        allowedCPUs: allowedText, allowedSharingACore: sharing)
    }

    /// `0-3,8` -> [0, 1, 2, 3, 8]; malformed parts are skipped.
    static func parseCPUList(_ text: String) -> [Int] {
        text.split(separator: ",").flatMap { part -> [Int] in
            let ends = part.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            if ends.count == 2, ends[0] <= ends[1], ends[1] - ends[0] < 65_536 { return Array(ends[0]...ends[1]) }
            return ends.count == 1 ? ends : []
        }
    }
}

/// The machine's CPUs, cores, packages, NUMA nodes and L3 size as sysfs lists them: every present
/// CPU, whatever the process's affinity or cpuset allows (the lab's topology view is the restricted
/// one; this is the machine's).
enum SysfsTopology {
    static func fingerprint(root: String = "/sys/devices/system") -> String {
        func read(_ path: String) -> String? {
            (try? String(contentsOfFile: root + "/" + path, encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let cpus = parseCPUList(read("cpu/present") ?? "")
        var packages = Set<String>(), cores = Set<String>()
        for cpu in cpus {
            let package = read("cpu/cpu\(cpu)/topology/physical_package_id") ?? "?"
            packages.insert(package)
            cores.insert(package + "/" + (read("cpu/cpu\(cpu)/topology/core_id") ?? "cpu\(cpu)"))
        }
        let nodes = max(1, parseCPUList(read("node/possible") ?? read("node/online") ?? "0").count)
        var parts = [plural(packages.count, "package"), plural(cores.count, "core"), plural(cpus.count, "PU"),
                     plural(nodes, "NUMA node")]
        if let first = cpus.first {
            // The largest cache level sysfs lists for the first CPU.
            for index in stride(from: 4, through: 0, by: -1) {
                if let level = read("cpu/cpu\(first)/cache/index\(index)/level"),
                   let size = read("cpu/cpu\(first)/cache/index\(index)/size") {
                    parts.append("L\(level) \(size)")
                    break
                }
            }
        }
        return parts.joined(separator: ", ")
    }

    /// "0-3,8,10-11" into [0, 1, 2, 3, 8, 10, 11]; malformed pieces are skipped.
    static func parseCPUList(_ text: String) -> [Int] {
        var result: [Int] = []
        for piece in text.split(separator: ",") {
            let bounds = piece.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            if bounds.count == 1 { result.append(bounds[0]) }
            if bounds.count == 2, bounds[0] <= bounds[1], bounds[1] - bounds[0] < 1 << 20 {
                result += Array(bounds[0]...bounds[1])
            }
        }
        return result
    }

    static func plural(_ n: Int, _ word: String) -> String { n == 1 ? "1 \(word)" : "\(n) \(word)s" }
}

/// 64-bit FNV-1a of the UTF-8 bytes, as 16 hex digits: an identifier, not a security measure.
func fnv1a64Hex(_ text: String) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}

/// The build this process runs: the code that was compiled and how. Everything here was fixed at
/// build time (the BuildIdentity plugin's generated source and compile-time conditions); nothing is
/// read or spawned at run time.
public struct BuildInfo: Codable, Sendable, Equatable {
    public var labVersion: String
    /// HEAD of the checkout when it was built (12 hex digits), `-dirty` if the build's files
    /// differed from it; "unknown" outside a git checkout. A label: `buildID` identifies the code.
    public var gitCommit: String
    /// The exact compiler version, e.g. "6.3.1".
    public var swiftVersion: String
    public var configuration: String
    public var flags: String
    /// SHA-256 over every file that makes the build (sources, C shims, the package manifest and
    /// the resolved dependency versions), taken at build time. Nil in manifests written before it.
    public var sourceDigest: String?
    /// What identifies the compiled code: 16 hex digits of FNV-1a over `sourceDigest` and `flags`.
    /// Any edit to a source file, a dependency or a build setting changes it; a commit of the same
    /// code, or an edit to a file outside the build (README, results), does not. runs.csv's
    /// `build_id`; a results folder holds one.
    public var buildID: String?

    enum CodingKeys: String, CodingKey {
        case labVersion = "lab_version"
        case gitCommit = "git_commit"
        case swiftVersion = "swift_version"
        case configuration
        case flags = "build_flags"
        case sourceDigest = "source_digest"
        case buildID = "build_id"
    }

    public static func current() -> BuildInfo { cached }

    private static let cached: BuildInfo = {
        #if DEBUG
        let configuration = "debug"
        let optimisation = "-Onone"
        #else
        let configuration = "release"
        let optimisation = "-O, whole-module"
        #endif
        #if arch(x86_64)
        let arch = "x86_64"
        #elseif arch(arm64)
        let arch = "arm64"
        #else
        let arch = "other"
        #endif
        let swift = GeneratedBuildIdentity.compilerVersion
        let sanitizer = ThreadSanitizer.isActive ? ", -sanitize=thread" : ""
        let flags = "swift build -c \(configuration) (\(optimisation)\(sanitizer)), Swift \(swift), \(arch)"
        let digest = GeneratedBuildIdentity.sourceDigest
        let commit = GeneratedBuildIdentity.gitCommit == "unknown"
            ? "unknown" : String(GeneratedBuildIdentity.gitCommit.prefix(12)) + (GeneratedBuildIdentity.gitDirty ? "-dirty" : "")
        return BuildInfo(labVersion: lockLabVersion, gitCommit: commit, swiftVersion: swift,
                         configuration: configuration, flags: flags, sourceDigest: digest,
                         buildID: buildID(sourceDigest: digest, flags: flags))
    }()

    /// The build id of a source digest and the build flags.
    public static func buildID(sourceDigest: String, flags: String) -> String {
        fnv1a64Hex(sourceDigest + "\n" + flags)
    }

    /// Files hashed into `sourceDigest` (for tests and the manifest's reader).
    public static var sourceFileCount: Int { GeneratedBuildIdentity.sourceFiles }

    /// Why results of `other` must not join results of `self`, or nil when both are one build.
    public func difference(from other: BuildInfo) -> String? {
        guard let mine = buildID else {
            return "an unidentified build \(gitCommit) (written before build ids)"
        }
        guard mine != other.buildID else { return nil }
        return "build \(mine) (commit \(gitCommit), \(configuration)), not \(other.buildID ?? "?") (commit \(other.gitCommit), \(other.configuration))"
    }
}

public struct Manifest: Codable, Sendable {
    public struct Invocation: Codable, Sendable {
        public var utcStart: String
        public var command: String
        enum CodingKeys: String, CodingKey {
            case utcStart = "utc_start"
            case command
        }
    }

    public var machine: MachineInfo
    public var build: BuildInfo
    /// The topology the runs used, one line (Topology.summary).
    public var topology: String
    public var latencySampling: String
    public var invocations: [Invocation]
    /// A folder merged from a sharded sweep's shards (`locklab merge`): every shard's machine,
    /// build, topology and commands; nil in a folder a sweep or run wrote itself.
    public var shards: [ShardManifest]? = nil
    /// A partial merge (`merge --partial`): what is missing (shards not there, or not finished); nil
    /// for a complete folder. The report says it is partial and names these.
    public var partial: [String]? = nil

    enum CodingKeys: String, CodingKey {
        case machine, build, topology, invocations, shards, partial
        case latencySampling = "latency_sampling"
    }

    /// Why results of this machine/build/topology must not join this manifest's folder, or nil.
    public func conflict(machine: MachineInfo, build: BuildInfo, topology: String) -> String? {
        if let reason = self.machine.difference(from: machine) { return reason }
        if let reason = self.build.difference(from: build) { return reason }
        if self.topology != topology {
            return "topology '\(self.topology)', not '\(topology)'"
        }
        return nil
    }

    /// The manifest in `directory`, if there is a readable one.
    public static func read(in directory: String) -> Manifest? {
        let path = (directory as NSString).appendingPathComponent("manifest.json")
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(Manifest.self, from: data)
    }

    public static func utcNow() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: Date())
    }

    /// The marker file of a folder of committed reference results (results/reference/).
    public static let referenceMarker = ".locklab-reference"

    /// Throws when `directory` is, or is below, a folder holding `referenceMarker`: committed
    /// reference results are never written, extended or moved aside by a run.
    public static func refuseReferenceFolder(_ directory: String) throws {
        var dir = URL(fileURLWithPath: directory).standardizedFileURL.resolvingSymlinksInPath()
        while true {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent(referenceMarker).path) {
                throw LabError.impossible("\(directory) is in \(dir.path), committed reference results that no run writes to; write to a folder of your own, e.g. results/local/ (git-ignored)")
            }
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { return }
            dir = parent
        }
    }

    /// `--replace-stale`: when `directory` holds results of another machine, build or topology,
    /// moves it to DIR.stale-BUILDID (replacing an older such folder) and returns the note to
    /// print; nil when it holds none. Never moves a reference folder.
    public static func moveStaleAside(_ directory: String, machine: MachineInfo, build: BuildInfo,
                                      topology: String) throws -> String? {
        try refuseReferenceFolder(directory)
        guard let existing = read(in: directory),
              let reason = existing.conflict(machine: machine, build: build, topology: topology) else { return nil }
        let aside = "\(directory).stale-\(existing.build.buildID ?? existing.build.gitCommit)"
        try? FileManager.default.removeItem(atPath: aside)
        do { try FileManager.default.moveItem(atPath: directory, toPath: aside) } catch {
            throw LabError.io("cannot move \(directory) aside to \(aside): \(error.localizedDescription)")
        }
        return "\(directory) held results of \(reason); moved to \(aside)"
    }

    /// Creates `directory` (and its parents) if missing; throws `LabError.io` with one line (the
    /// system's reason, not Foundation's error dump) when it cannot: a file in the way, no permission.
    public static func createFolder(_ directory: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            if isDirectory.boolValue { return }
            throw LabError.io("cannot create output folder \(directory): a file of that name is in the way")
        }
        // mkdir -p by hand, for errno's reason on the component that failed (Foundation's error
        // says "NSCocoaErrorDomain error 512" for a file in the way of a parent).
        var path = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            path += "/" + component
            if mkdir(path, 0o777) != 0 && errno != EEXIST {
                throw LabError.io("cannot create output folder \(directory): \(path): \(String(cString: strerror(errno)))")
            }
        }
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LabError.io("cannot create output folder \(directory): a file of that name is in the way")
        }
    }

    /// Records this invocation in DIR/manifest.json, creating it, or refusing when the folder holds
    /// another machine's or another build's results (unless `allowMixing`), or is a reference folder.
    public static func record(in directory: String, machine: MachineInfo, build: BuildInfo, topology: String,
                              latencySampling: String, command: String, allowMixing: Bool = false) throws -> Manifest {
        try refuseReferenceFolder(directory)
        try createFolder(directory)
        let path = (directory as NSString).appendingPathComponent("manifest.json")
        let invocation = Invocation(utcStart: utcNow(), command: command)
        var manifest: Manifest
        if let data = FileManager.default.contents(atPath: path) {
            guard let existing = try? JSONDecoder().decode(Manifest.self, from: data) else {
                throw LabError.io("\(path) is not a LockLab manifest; use a new output folder")
            }
            if !allowMixing, let reason = existing.conflict(machine: machine, build: build, topology: topology) {
                throw LabError.impossible("\(directory) holds results of \(reason); refusing to mix (--replace-stale moves them aside, --allow-mixing mixes them)")
            }
            manifest = existing
            manifest.invocations.append(invocation)
        } else {
            manifest = Manifest(machine: machine, build: build, topology: topology, latencySampling: latencySampling,
                                invocations: [invocation])
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(manifest)
        guard FileManager.default.createFile(atPath: path, contents: data + Data("\n".utf8)) else {
            throw LabError.io("cannot write \(path)")
        }
        return manifest
    }
}
