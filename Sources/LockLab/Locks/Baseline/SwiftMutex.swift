// swift-mutex: the Swift standard library's Synchronization.Mutex<Void>.
//
// Paper: none; swift/stdlib/public/Synchronization/Mutex/LinuxImpl.swift.
// Idea: on Linux a 32-bit word holding the owner's thread id; the uncontended lock is one CAS of
// 0 -> tid, and a contended one goes to the kernel's priority-inheritance futex (FUTEX_LOCK_PI /
// FUTEX_UNLOCK_PI), which queues waiters in the kernel and hands the word over on unlock.
// Invariants: Mutex is ~Copyable and must not move once in use; it is initialised in place in a
// 128-byte block of its own (UnsafeMutablePointer.initialize(to:)) and deinitialised in place.
// Mutex offers only a scoped `withLock`, so this lock is `splitLockUnlock: false`: the harness must
// call `withLock`, and `lock`/`unlock` trap. `withLockIfAvailable` is scoped too, so no trylock.

import Synchronization

public struct SwiftMutexLock: LockAlgorithm {
    public typealias Context = NoContext

    public static let descriptor = LockDescriptor(
        name: "swift-mutex", family: .baseline, waiting: .park,
        paper: "Swift stdlib Synchronization.Mutex (Linux: PI futex)",
        supportsTryLock: false, splitLockUnlock: false)

    @usableFromInline let mutex: UnsafeMutablePointer<Mutex<Void>>
    @usableFromInline let memory: LabMemory

    public init(_ environment: LockEnvironment) throws {
        precondition(MemoryLayout<Mutex<Void>>.size <= LabMemory.alignment
                     && MemoryLayout<Mutex<Void>>.alignment <= LabMemory.alignment)
        memory = environment.memory
        mutex = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: Mutex<Void>.self, capacity: 1)
        mutex.initialize(to: Mutex(()))
    }

    @inline(__always)
    public func withLock<R>(_ context: inout NoContext, _ body: () throws -> R) rethrows -> R {
        // Mutex.withLock's lock is an acquire, its unlock a release (the stdlib's guarantees).
        try mutex.pointee.withLock { _ in try body() }
    }

    @inline(__always)
    public func lock(_ context: inout NoContext) {
        fatalError("swift-mutex has no separate lock(): Synchronization.Mutex only offers withLock "
                   + "(descriptor.splitLockUnlock is false); call withLock")
    }

    @inline(__always)
    public func unlock(_ context: inout NoContext) {
        fatalError("swift-mutex has no separate unlock(): Synchronization.Mutex only offers withLock "
                   + "(descriptor.splitLockUnlock is false); call withLock")
    }

    public func deallocate() {
        mutex.deinitialize(count: 1)
        memory.deallocate(UnsafeMutableRawPointer(mutex), bytes: LabMemory.alignment)
    }
}
