// no-lock: no lock at all, for one thread only.
//
// Not an algorithm: it measures the harness's own cost per iteration (the loop, the counter, the
// handover bookkeeping, the sampled latency timer), so that every other lock's ns/op can be read
// as harness + lock. The harness refuses it above one thread: without a lock the counter would race.
// It was called `null`, which pandas, R and spreadsheets read as a missing value (issue 15).

public struct NoLock: LockAlgorithm {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "no-lock", family: .harness, waiting: .never,
        paper: "none: the harness's own cost (one thread only)",
        supportsTryLock: true, maxThreads: 1)

    public init(_ environment: LockEnvironment) {}

    @inline(__always) public func lock(_ context: inout NoContext) {}
    @inline(__always) public func tryLock(_ context: inout NoContext) -> Bool { true }
    @inline(__always) public func unlock(_ context: inout NoContext) {}
    public func deallocate() {}
}
