// What ThreadSanitizer can and cannot check here (`make test-tsan`: the tests, and torture, built
// with -sanitize=thread).
//
// TSan checks every lock whose synchronisation it can see: the Swift locks on C11 atomics (CShims,
// instrumented with the order each call site names) and the pthread locks (TSan intercepts them).
// Three kinds it cannot see; under TSan the tests and `locklab torture` skip them, saying why:
//  - ck-*: Concurrency Kit's ck_pr_* operations are inline assembly, which TSan does not instrument;
//    it sees neither the atomics nor their ordering, and reports the critical section's plain
//    counter as racing on every handover (a false positive).
//  - swift-mutex: Synchronization.Mutex hands a contended lock over in the kernel (FUTEX_LOCK_PI /
//    FUTEX_UNLOCK_PI, called from the stdlib's uninstrumented slow path): the waiter returns from the
//    syscall owning the lock with no atomic TSan can pair with the unlocker's release.
//  - urcu-*: liburcu's flavours keep their grace periods in the uninstrumented shared library
//    (its own atomics, membarrier(2), futexes): TSan sees a reader's load of a node and the
//    writer's poisoning of it after synchronize_rcu with nothing ordering them (a false positive).
// A suppressions file cannot do this job: the racing accesses are the harness's own critical
// section (no ck_* or Mutex frame is on either stack), so suppressing them would hide real races of
// every other lock.

import Foundation

public enum ThreadSanitizer {
    /// True when this process was built with -sanitize=thread: the TSan runtime is linked in and
    /// exports its entry point.
    public static let isActive: Bool = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil

    /// Why TSan cannot check the lock named `lock` (nil: it can).
    public static func blindSpot(_ lock: String) -> String? {
        if lock.hasPrefix("ck-") {
            return "ck_pr_* is inline assembly that ThreadSanitizer does not instrument"
        }
        if lock == "swift-mutex" {
            return "Synchronization.Mutex hands over in the kernel (PI futex), invisible to ThreadSanitizer"
        }
        if lock.hasPrefix("urcu-") {
            return "liburcu's grace periods run in its uninstrumented shared library (membarrier, its own atomics)"
        }
        return nil
    }
}
