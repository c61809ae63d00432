// `locklab slurm`: a sharded sweep as Slurm jobs. An sbatch job array whose task I runs shard I
// of N (`locklab sweep FILE --shard I/N --out DIR`) on a whole node, and a second job, dependent
// on the array with `afterany` (it starts when every task has ended, finished or not), that merges
// the shards and draws the report; `merge` names any shard that did not finish. Logs go to
// DIR/logs/. The scripts are plain text written into DIR/slurm/, to read, keep with the results,
// and submit by hand (DIR/slurm/submit.sh) or with `--submit`.

import Foundation

public struct SlurmJob: Sendable, Equatable {
    /// The locklab executable the jobs run, an absolute path (a cluster's nodes share the file system).
    public var locklab: String
    /// The experiment file and the results folder, absolute paths.
    public var experimentFile: String
    public var out: String
    /// The experiment's name (the jobs are named after it).
    public var name: String
    public var shards: Int
    public var partition: String?
    public var constraint: String?
    /// Slurm's time limit of each shard task: "MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM" or
    /// "D-HH:MM:SS".
    public var timeLimit: String?
    /// The whole node for each task (default): co-runners ruin lock measurements.
    public var exclusive: Bool
    /// Passed on to `merge` (shards from different machines merged, each row keeping its machine).
    public var allowMixing: Bool
    /// Where the jobs start (`--chdir`), an absolute path.
    public var workingDirectory: String

    /// Checks the values that go into `#SBATCH` lines: one line naming the flag on error.
    public init(locklab: String, experimentFile: String, out: String, name: String, shards: Int,
                partition: String? = nil, constraint: String? = nil, timeLimit: String? = nil,
                exclusive: Bool = true, allowMixing: Bool = false, workingDirectory: String) throws {
        guard (1...ShardSelector.maxCount).contains(shards) else {
            throw LabError.badValue(flag: "--shards", value: "\(shards)", accepted: "a count in 1...\(ShardSelector.maxCount)")
        }
        for (flag, value) in [("--partition", partition), ("--constraint", constraint)] {
            if let value, value.isEmpty || value.contains(where: { $0.isWhitespace || "'\"\\$`#;".contains($0) }) {
                throw LabError.badValue(flag: flag, value: value, accepted: "a Slurm name or expression without spaces, quotes, '$', '#' or ';'")
            }
        }
        if let timeLimit, !Self.isSlurmTime(timeLimit) {
            throw LabError.badValue(flag: "--time", value: timeLimit,
                                    accepted: "a Slurm time: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS")
        }
        // #SBATCH lines are split at spaces by sbatch: paths there must have none.
        for (what, path) in [("--out", out), ("working directory", workingDirectory)] {
            if path.contains(where: { $0.isWhitespace || $0 == "%" || $0 == "\"" || $0 == "'" }) {
                throw LabError.badValue(flag: what, value: path, accepted: "a path without spaces, quotes or '%' (it goes into #SBATCH lines)")
            }
        }
        self.locklab = locklab
        self.experimentFile = experimentFile
        self.out = out
        self.name = String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "-" })
        self.shards = shards
        self.partition = partition
        self.constraint = constraint
        self.timeLimit = timeLimit
        self.exclusive = exclusive
        self.allowMixing = allowMixing
        self.workingDirectory = workingDirectory
    }

    /// Slurm's time formats (sbatch --time).
    public static func isSlurmTime(_ text: String) -> Bool {
        func numbers(_ s: Substring, count: ClosedRange<Int>) -> Bool {
            let parts = s.split(separator: ":", omittingEmptySubsequences: false)
            return count.contains(parts.count) && parts.allSatisfy { !$0.isEmpty && $0.count <= 6 && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
        }
        if text == "infinite" || text == "UNLIMITED" { return true }
        if let dash = text.firstIndex(of: "-") {
            let days = text[..<dash], rest = text[text.index(after: dash)...]
            return numbers(days, count: 1...1) && numbers(rest, count: 1...3)
        }
        return numbers(Substring(text), count: 1...3)
    }

    public var logsDirectory: String { (out as NSString).appendingPathComponent("logs") }
    public var scriptsDirectory: String { (out as NSString).appendingPathComponent("slurm") }
    public var shardScriptPath: String { (scriptsDirectory as NSString).appendingPathComponent("shards.sbatch") }
    public var mergeScriptPath: String { (scriptsDirectory as NSString).appendingPathComponent("merge.sbatch") }
    public var submitScriptPath: String { (scriptsDirectory as NSString).appendingPathComponent("submit.sh") }

    private var placementLines: [String] {
        var lines: [String] = []
        if let partition { lines.append("#SBATCH --partition=\(partition)") }
        if let constraint { lines.append("#SBATCH --constraint=\(constraint)") }
        return lines
    }

    /// The job array: task I runs shard I of N.
    public var shardScript: String {
        var lines = [
            "#!/bin/bash",
            "# LockLab: experiment '\(name)' (\(experimentFile)) as a Slurm job array; task I runs shard I of \(shards)",
            "# (whole curves: one lock, workload and placement over all its thread counts and repeats) into",
            "# \(out)/shards/I/, resuming what an earlier attempt recorded. Written by `locklab slurm`.",
            "#SBATCH --job-name=locklab-\(name)",
            "#SBATCH --array=1-\(shards)",
            "#SBATCH --nodes=1",
            "#SBATCH --ntasks=1",
        ]
        lines.append(exclusive ? "#SBATCH --exclusive"
                               : "# not exclusive (--no-exclusive): other jobs may share the node and disturb the measurements")
        lines += placementLines
        if let timeLimit { lines.append("#SBATCH --time=\(timeLimit)") }
        lines += [
            "#SBATCH --output=\(logsDirectory)/shard-%a-job-%A.out",
            "#SBATCH --chdir=\(workingDirectory)",
            "set -euo pipefail",
            "exec \(shellQuote(locklab)) sweep \(shellQuote(experimentFile)) --shard \"${SLURM_ARRAY_TASK_ID}/\(shards)\" --out \(shellQuote(out))",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The merge and report job, submitted with `--dependency=afterany:<array job id>`.
    public var mergeScript: String {
        var lines = [
            "#!/bin/bash",
            "# LockLab: merge the \(shards) shards of '\(name)' into \(out) and draw its report. Submitted with",
            "# --dependency=afterany:<array job>: it starts when every shard has ended, finished or not;",
            "# merge names a shard that did not finish (rerun that task, then this job). Written by `locklab slurm`.",
            "#SBATCH --job-name=locklab-\(name)-merge",
            "#SBATCH --nodes=1",
            "#SBATCH --ntasks=1",
        ]
        lines += placementLines
        lines += [
            "#SBATCH --time=30",
            "#SBATCH --output=\(logsDirectory)/merge-job-%j.out",
            "#SBATCH --chdir=\(workingDirectory)",
            "set -euo pipefail",
            "exec \(shellQuote(locklab)) merge \(shellQuote(out))\(allowMixing ? " --allow-mixing" : "") --report",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Submits both by hand: what `--submit` does.
    public var submitScript: String {
        """
        #!/bin/bash
        # Submits the shard array, then the merge and report job after it (afterany). Written by `locklab slurm`.
        set -euo pipefail
        array=$(sbatch --parsable \(shellQuote(shardScriptPath)))
        array=${array%%;*}
        merge=$(sbatch --parsable --dependency=afterany:"$array" \(shellQuote(mergeScriptPath)))
        echo "shards: array job $array (tasks 1-\(shards)); merge and report: job ${merge%%;*}; logs in \(logsDirectory)/"

        """
    }

    /// Writes the three scripts into DIR/slurm/ and makes DIR/logs/ (sbatch does not create it).
    public func write() throws {
        for dir in [scriptsDirectory, logsDirectory] {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
                throw LabError.io("cannot create \(dir): \(error.localizedDescription)")
            }
        }
        for (path, text) in [(shardScriptPath, shardScript), (mergeScriptPath, mergeScript), (submitScriptPath, submitScript)] {
            try writeAtomically(Data(text.utf8), to: path)
            chmod(path, 0o755)
        }
    }

    /// The job id in sbatch's answer: `--parsable` gives "ID" or "ID;CLUSTER", plain sbatch
    /// "Submitted batch job ID". Nil if there is none.
    public static func jobID(fromSbatchOutput output: String) -> String? {
        for line in output.split(whereSeparator: \.isNewline).reversed() {
            let text = line.trimmingCharacters(in: .whitespaces)
            let candidate = text.hasPrefix("Submitted batch job ")
                ? String(text.dropFirst("Submitted batch job ".count).prefix { $0 != " " })
                : String(text.prefix { $0 != ";" })
            if !candidate.isEmpty, candidate.allSatisfy({ $0.isASCII && $0.isNumber }) { return candidate }
        }
        return nil
    }
}

/// `text` as one word for bash: unchanged when it is plain, single-quoted otherwise.
public func shellQuote(_ text: String) -> String {
    if !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/._-+=:,@".contains($0)) }) {
        return text
    }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
