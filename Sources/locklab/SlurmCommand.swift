// `locklab slurm FILE --shards N --out DIR`: a sharded sweep as a Slurm job array plus a merge job.

import ArgumentParser
import Foundation
import LockLab

struct SlurmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slurm",
        abstract: "Write (and with --submit submit) Slurm jobs that run FILE's sweep as N shards, then merge and report.",
        discussion: """
            Writes DIR/slurm/shards.sbatch (a job array: task I runs `locklab sweep FILE --shard I/N \
            --out DIR` on a whole node), DIR/slurm/merge.sbatch (`locklab merge DIR --report`, to submit \
            with --dependency=afterany on the array) and DIR/slurm/submit.sh (submits both). Logs go to \
            DIR/logs/. The jobs run this locklab executable, FILE and DIR by absolute path: the cluster's \
            nodes must share that file system. Keep the nodes alike (machine type, image, governor): \
            merge refuses shards of different builds, and of different machines unless --allow-mixing.
            """)

    @Argument(help: ArgumentHelp("The experiment file (YAML).", valueName: "FILE"))
    var file: String

    @Option(help: ArgumentHelp("Shards, one array task each (whole curves; see `locklab sweep FILE --shards N --dry-run`).", valueName: "N"))
    var shards: Int

    @Option(help: ArgumentHelp("Results folder: shards in DIR/shards/I/, merged results in DIR, scripts in DIR/slurm/, logs in DIR/logs/.", valueName: "DIR"))
    var out: String

    @Option(help: ArgumentHelp("Slurm partition (sbatch --partition).", valueName: "P"))
    var partition: String?

    @Option(help: ArgumentHelp("Node features the shard tasks need (sbatch --constraint), e.g. an exact machine type.", valueName: "C"))
    var constraint: String?

    @Option(help: ArgumentHelp("Time limit of each shard task (sbatch --time: MM, HH:MM:SS, D-HH:MM ...).", valueName: "T"))
    var time: String?

    @Flag(inversion: .prefixedNo, help: "Give each shard task a whole node (sbatch --exclusive; default: co-runners ruin lock measurements).")
    var exclusive = true

    @Flag(name: .customLong("allow-mixing"), help: "Let the merge job merge shards from different machines (each row keeps its machine).")
    var allowMixing = false

    @Flag(help: "Submit the array and the merge job with sbatch and show their job ids.")
    var submit = false

    func run() throws {
        let experiment = try Experiment.load(path: file)
        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ path: String) -> String {
            URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: cwd, isDirectory: true)).standardizedFileURL.path
        }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let job = try SlurmJob(locklab: exe, experimentFile: absolute(file), out: absolute(out), name: experiment.name,
                               shards: shards, partition: partition, constraint: constraint, timeLimit: time,
                               exclusive: exclusive, allowMixing: allowMixing, workingDirectory: cwd)
        try job.write()
        print("wrote \(job.shardScriptPath) (array 1-\(shards)), \(job.mergeScriptPath) (merge and report) and \(job.submitScriptPath); logs go to \(job.logsDirectory)/")
        guard submit else {
            print("submit with: \(job.submitScriptPath)   (or rerun with --submit)")
            return
        }
        guard let sbatch = Self.onPath("sbatch") else {
            throw LabError.impossible("sbatch is not on the PATH: the scripts are written; run \(job.submitScriptPath) where Slurm's commands are")
        }
        let array = try Self.sbatch(sbatch, ["--parsable", job.shardScriptPath])
        let merge = try Self.sbatch(sbatch, ["--parsable", "--dependency=afterany:\(array)", job.mergeScriptPath])
        print("submitted: shards as array job \(array) (tasks 1-\(shards)), merge and report as job \(merge) (afterany:\(array)); logs in \(job.logsDirectory)/")
    }

    /// Runs sbatch and returns the job id it answers with; one line when it fails or says no id.
    static func sbatch(_ tool: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch { throw LabError.io("cannot run \(tool): \(error.localizedDescription)") }
        let answer = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let complaint = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let said = (complaint + answer).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        guard process.terminationStatus == 0 else {
            throw LabError.impossible("sbatch \(arguments.joined(separator: " ")) failed (exit \(process.terminationStatus)): \(said)")
        }
        guard let id = SlurmJob.jobID(fromSbatchOutput: answer) else {
            throw LabError.impossible("sbatch \(arguments.joined(separator: " ")) gave no job id: '\(said)'")
        }
        return id
    }

    static func onPath(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}
