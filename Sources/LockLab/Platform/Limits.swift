// The machine's and the lab's limits: what every layer above may ask without importing the C shim.

import CShims

public enum Limits {
    /// Most threads one run may have (`--threads`, experiment files, torture): beyond any machine's
    /// oversubscription experiments, and small enough that a typo fails at once instead of
    /// planning or starting a hundred million threads.
    public static let maxThreads = 8192

    /// Online CPUs of this machine (sysconf), at least 1.
    public static var onlineCPUs: Int { max(1, Int(cshims_online_cpus())) }
}
