// pthread-rwlock, pthread-rwlock-wp: glibc's reader-writer lock, the yardstick a C programmer
// reaches for.
//
// Paper: none; glibc nptl (nptl/pthread_rwlock_common.c, T. Riegel's 2017 rewrite). The two kinds
// are one algorithm with a preference bit: the default (PTHREAD_RWLOCK_PREFER_READER_NP) lets new
// readers in while a writer waits (writers can starve: the min_thread_updates column shows it);
// PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP (pthread_rwlockattr_setkind_np) turns new readers
// away once a writer waits.
// Idea: one `__readers` word holds the reader count, a writer-waiting and a phase bit; readers
// enter with one `lock xadd` on it (the centralised count, so reads do not scale), writers
// serialise on `__writers` and sleep in futexes. Readers and writers park, they do not spin.
// Invariants: glibc's; the rwlock (56 bytes) lives alone on its 128-byte block and is destroyed
// only after every thread is done with it.

import Glibc

/// Which of glibc's two kinds: the name, the source and the attribute (nil: glibc's default).
public protocol PthreadRWLockKind {
    static var name: String { get }
    static var paper: String { get }
    static var attribute: Int32? { get }
}

public enum PthreadRWLockPreferReader: PthreadRWLockKind {
    public static var name: String { "pthread-rwlock" }
    public static var paper: String { "glibc nptl pthread_rwlock_t, default kind (PTHREAD_RWLOCK_PREFER_READER_NP)" }
    public static var attribute: Int32? { nil }
}

public enum PthreadRWLockPreferWriter: PthreadRWLockKind {
    public static var name: String { "pthread-rwlock-wp" }
    public static var paper: String { "glibc nptl pthread_rwlock_t, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP" }
    public static var attribute: Int32? { Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP) }
}

public typealias PthreadRWLock = PthreadRWLockOf<PthreadRWLockPreferReader>
public typealias PthreadRWLockWriterPreferring = PthreadRWLockOf<PthreadRWLockPreferWriter>

public struct PthreadRWLockOf<Kind: PthreadRWLockKind>: ReaderWriterLock {
    public typealias Context = NoContext

    public static var descriptor: LockDescriptor {
        LockDescriptor(name: Kind.name, family: .readerWriter, waiting: .park, paper: Kind.paper, supportsTryLock: true)
    }

    @usableFromInline let rwlock: PthreadRWLockWord

    public init(_ environment: LockEnvironment) throws {
        rwlock = try PthreadRWLockWord(memory: environment.memory, kind: Kind.attribute)
    }

    @inline(__always) public func lock(_ context: inout NoContext) { rwlock.writeLock() }
    @inline(__always) public func tryLock(_ context: inout NoContext) -> Bool { rwlock.tryWriteLock() }
    @inline(__always) public func unlock(_ context: inout NoContext) { rwlock.unlock() }
    @inline(__always) public func readLock(_ context: inout NoContext) { rwlock.readLock() }
    @inline(__always) public func readUnlock(_ context: inout NoContext) { rwlock.unlock() }
    public func deallocate() { rwlock.deallocate() }
}

/// A pthread_rwlock_t alone on its 128-byte block, of a given kind (nil: glibc's default).
@usableFromInline
struct PthreadRWLockWord {
    @usableFromInline let rwlock: UnsafeMutablePointer<pthread_rwlock_t>
    let memory: LabMemory

    init(memory: LabMemory, kind: Int32?) throws {
        precondition(MemoryLayout<pthread_rwlock_t>.size <= LabMemory.alignment)
        self.memory = memory
        rwlock = memory.allocate(bytes: LabMemory.alignment).bindMemory(to: pthread_rwlock_t.self, capacity: 1)
        var rc: Int32
        if let kind {
            var attr = pthread_rwlockattr_t()
            rc = pthread_rwlockattr_init(&attr)
            if rc == 0 {
                rc = pthread_rwlockattr_setkind_np(&attr, kind)
                if rc == 0 { rc = pthread_rwlock_init(rwlock, &attr) }
                pthread_rwlockattr_destroy(&attr)
            }
        } else {
            rc = pthread_rwlock_init(rwlock, nil)
        }
        if rc != 0 {
            memory.deallocate(UnsafeMutableRawPointer(rwlock), bytes: LabMemory.alignment)
            throw LockError.unsupported("pthread_rwlock_init (kind \(kind.map(String.init) ?? "default")) failed: \(String(cString: strerror(rc)))")
        }
    }

    // glibc's lock calls are acquire operations and unlock a release; without error checking
    // (no EDEADLK owner checks on these kinds) anything but 0 is a broken lab.
    @inline(__always)
    func writeLock() {
        let rc = pthread_rwlock_wrlock(rwlock)
        if rc != 0 { pthreadFailure("pthread_rwlock_wrlock", rc) }
    }

    @inline(__always)
    func tryWriteLock() -> Bool {
        let rc = pthread_rwlock_trywrlock(rwlock)
        if rc == 0 { return true }
        if rc != EBUSY { pthreadFailure("pthread_rwlock_trywrlock", rc) }
        return false
    }

    @inline(__always)
    func readLock() {
        // EAGAIN (more than 2^29 readers) cannot happen at the lab's thread counts.
        let rc = pthread_rwlock_rdlock(rwlock)
        if rc != 0 { pthreadFailure("pthread_rwlock_rdlock", rc) }
    }

    @inline(__always)
    func unlock() {
        let rc = pthread_rwlock_unlock(rwlock)
        if rc != 0 { pthreadFailure("pthread_rwlock_unlock", rc) }
    }

    func deallocate() {
        _ = pthread_rwlock_destroy(rwlock)
        memory.deallocate(UnsafeMutableRawPointer(rwlock), bytes: LabMemory.alignment)
    }
}
