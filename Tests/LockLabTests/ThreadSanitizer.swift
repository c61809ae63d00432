// Running the suite under ThreadSanitizer (`make test-tsan`: swift test --sanitize=thread).
//
// TSan checks every lock whose synchronisation it can see: the Swift locks on C11 atomics (CShims,
// instrumented with the order each call site names) and the pthread locks (TSan intercepts them).
// It cannot check two kinds of lock, and the tests skip those under TSan, each skip stating why
// (Test.cancel with the reason, and a "note: skipped under ThreadSanitizer" line on stdout):
//  - ck-*: Concurrency Kit's ck_pr_* operations are inline assembly, which TSan does not instrument;
//    it sees neither the atomics nor the ordering, and reports the harness's guarded plain counter
//    as racing (a false positive on every handover).
//  - swift-mutex: Synchronization.Mutex hands a contended lock over in the kernel (FUTEX_LOCK_PI /
//    FUTEX_UNLOCK_PI, called from the stdlib's uninstrumented slow path): the waiter returns from
//    the syscall owning the lock with no atomic TSan can pair with the unlocker's release.
// A suppressions file cannot do this job: the racing accesses are the harness's own critical
// section (no ck_* or Mutex frame is on either stack), so suppressing them would hide real races
// of every other lock.
// Tests that race on purpose (a "lock" that excludes nothing, to show a checker can fail) are
// disabled under TSan with `.enabled(if: !ThreadSanitizer.isActive, ...)`.
// Where TSan's slowdown matters, work is cut under TSan (`ThreadSanitizer.scaled`): the parser
// property tests. The whole TSan run takes about as long as the normal one (~1-2 minutes).

import Foundation
import Testing

enum ThreadSanitizer {
    /// True when this test binary was built with -sanitize=thread: the TSan runtime is linked in
    /// and exports its entry point.
    static let isActive: Bool = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__tsan_init") != nil

    /// Why TSan cannot check `lock` (nil: it can).
    static func blindSpot(_ lock: String) -> String? {
        if lock.hasPrefix("ck-") {
            return "ck_pr_* is inline assembly that ThreadSanitizer does not instrument"
        }
        if lock == "swift-mutex" {
            return "Synchronization.Mutex hands over in the kernel (PI futex), invisible to ThreadSanitizer"
        }
        return nil
    }

    /// Skips the current test case under TSan if TSan cannot check `lock`.
    static func skipIfBlind(_ lock: String) throws {
        guard isActive, let reason = blindSpot(lock) else { return }
        // Also on stdout: the test output does not list cancelled cases of a parameterized test.
        print("note: skipped under ThreadSanitizer: \(lock): \(reason)")
        try Test.cancel("skipped under ThreadSanitizer: \(lock): \(reason)")
    }

    /// `n` normally; `n / divisor` (at least `minimum`) under TSan.
    static func scaled(_ n: Int, divisor: Int = 4, minimum: Int = 1) -> Int {
        isActive ? max(minimum, n / divisor) : n
    }
}
