// The machine's and the lab's limits: what every layer above may ask without importing the C shim.

import CShims

public enum Limits {
    /// Most threads one run may have (`--threads`, experiment files, torture): beyond any machine's
    /// oversubscription experiments, and small enough that a typo fails at once instead of
    /// planning or starting a hundred million threads.
    public static let maxThreads = 8192

    /// Most repeats of a matrix (`--repeat`, `repeats:`).
    public static let maxRepeats = 10_000

    /// Most runs one matrix may plan (repeats x locks x thread counts x workloads x placements):
    /// a million short runs is days of machine time; beyond it a typo, refused before the plan is built.
    public static let maxPlannedRuns = 1_000_000

    /// Most workloads an experiment file's lists may combine into (cs_lines x cs_ns x ncs_ns).
    public static let maxWorkloads = 10_000

    /// Online CPUs of this machine (sysconf), at least 1.
    public static var onlineCPUs: Int { max(1, Int(cshims_online_cpus())) }
}
