// Running the suite under ThreadSanitizer (`make test-tsan`: swift test --sanitize=thread). Which
// locks TSan cannot check, and why, is ThreadSanitizer.blindSpot (Sources/LockLab/Harness/
// ThreadSanitizer.swift). Under TSan:
//  - tests of those locks are skipped with the reason (Test.cancel, and a "note: skipped under
//    ThreadSanitizer" line on stdout, since cancelled cases of a parameterized test are not listed);
//  - tests that race on purpose (a "lock" that excludes nothing, to show that a checker can fail)
//    are disabled with `.enabled(if: !ThreadSanitizer.isActive, ...)`;
//  - where TSan's slowdown matters, the work is cut (`ThreadSanitizer.scaled`): the parser property
//    tests. The whole TSan run takes about as long as the normal one (~1-2 minutes).

import Testing
@testable import LockLab

extension ThreadSanitizer {
    /// Skips the current test case under TSan if TSan cannot check `lock`.
    static func skipIfBlind(_ lock: String) throws {
        guard isActive, let reason = blindSpot(lock) else { return }
        print("note: skipped under ThreadSanitizer: \(lock): \(reason)")
        try Test.cancel("skipped under ThreadSanitizer: \(lock): \(reason)")
    }

    /// `n` normally; `n / divisor` (at least `minimum`) under TSan.
    static func scaled(_ n: Int, divisor: Int = 4, minimum: Int = 1) -> Int {
        isActive ? max(minimum, n / divisor) : n
    }
}
