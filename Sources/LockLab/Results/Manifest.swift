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

    enum CodingKeys: String, CodingKey {
        case host, kernel, clock
        case memoryPolicy = "mem_policy"
        case cpuModel = "cpu_model"
        case onlineCPUs = "online_cpus"
        case memoryGiB = "memory_gib"
        case numaAvailable = "numa_available"
        case realNumaNodes = "real_numa_nodes"
        case cyclesPerNanosecond = "cycles_per_ns"
    }

    public static func current() -> MachineInfo {
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
        return MachineInfo(
            host: host, cpuModel: model, kernel: kernel,
            onlineCPUs: ProcessInfo.processInfo.activeProcessorCount,
            memoryGiB: (Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824 * 10).rounded() / 10,
            numaAvailable: LabMemory.numaAvailable, realNumaNodes: LabMemory.realNodeCount,
            cyclesPerNanosecond: (CycleClock.cyclesPerNanosecond * 1000).rounded() / 1000,
            clock: ClockFacts.current, memoryPolicy: LabMemory.policyProbe)
    }
}

public struct BuildInfo: Codable, Sendable, Equatable {
    public var labVersion: String
    public var gitCommit: String
    public var swiftVersion: String
    public var configuration: String
    public var flags: String

    enum CodingKeys: String, CodingKey {
        case labVersion = "lab_version"
        case gitCommit = "git_commit"
        case swiftVersion = "swift_version"
        case configuration
        case flags = "build_flags"
    }

    public static func current() -> BuildInfo {
        #if DEBUG
        let configuration = "debug"
        let flags = "swift build -c debug (-Onone)"
        #else
        let configuration = "release"
        let flags = "swift build -c release (-O, whole-module)"
        #endif
        return BuildInfo(labVersion: lockLabVersion, gitCommit: gitCommit(), swiftVersion: swiftVersion(),
                         configuration: configuration, flags: flags)
    }

    /// The commit of the checkout the executable was built in, with `-dirty` if it has local changes.
    static func gitCommit() -> String {
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
        let dir = exe.deletingLastPathComponent().path
        guard let head = run("/usr/bin/env", ["git", "-C", dir, "rev-parse", "--short=12", "HEAD"]) else { return "unknown" }
        let status = run("/usr/bin/env", ["git", "-C", dir, "status", "--porcelain", "--untracked-files=no"]) ?? ""
        return status.isEmpty ? head : head + "-dirty"
    }

    static func swiftVersion() -> String {
        #if compiler(>=6.3)
        return "6.3+"
        #elseif compiler(>=6.0)
        return "6.x"
        #else
        return "5.x"
        #endif
    }

    static func run(_ tool: String, _ args: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
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

    enum CodingKeys: String, CodingKey {
        case machine, build, topology, invocations, shards
        case latencySampling = "latency_sampling"
    }

    /// Why results of this machine/build/topology must not join this manifest's folder, or nil.
    public func conflict(machine: MachineInfo, build: BuildInfo, topology: String) -> String? {
        if self.machine.host != machine.host || self.machine.cpuModel != machine.cpuModel {
            return "machine '\(self.machine.host)' (\(self.machine.cpuModel)), not '\(machine.host)' (\(machine.cpuModel))"
        }
        if self.build.gitCommit != build.gitCommit || self.build.configuration != build.configuration {
            return "build \(self.build.gitCommit) (\(self.build.configuration)), not \(build.gitCommit) (\(build.configuration))"
        }
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

    /// Records this invocation in DIR/manifest.json, creating it, or refusing when the folder holds
    /// another machine's or another build's results (unless `allowMixing`).
    public static func record(in directory: String, machine: MachineInfo, build: BuildInfo, topology: String,
                              latencySampling: String, command: String, allowMixing: Bool = false) throws -> Manifest {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw LabError.io("cannot create output folder \(directory): \(error.localizedDescription)")
        }
        let path = (directory as NSString).appendingPathComponent("manifest.json")
        let invocation = Invocation(utcStart: utcNow(), command: command)
        var manifest: Manifest
        if let data = FileManager.default.contents(atPath: path) {
            guard let existing = try? JSONDecoder().decode(Manifest.self, from: data) else {
                throw LabError.io("\(path) is not a LockLab manifest; use a new output folder")
            }
            if !allowMixing, let reason = existing.conflict(machine: machine, build: build, topology: topology) {
                throw LabError.impossible("\(directory) holds results of \(reason); refusing to mix (pass --allow-mixing to override)")
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
