// c-tkt-tkt: lock cohorting with a global ticket lock and a ticket lock per NUMA node.
//
// Paper: D. Dice, V. J. Marathe, N. Shavit, "Lock Cohorting: A General Technique for Designing NUMA
// Locks", PPoPP 2012 (and ACM TOPC 1(2), 2015). The skeleton is Cohort.swift's; this file names the
// two locks and the defaults.
// Idea: a thread takes its node's ticket lock, then the global ticket lock unless the previous local
// holder passed the global lock on with the local one (Cohort.swift: record, invariants).
// Cohort detection: a waiter has taken a local ticket iff local.next != local.owner + 1.
// Reference: LiTL's src/ctkttkt.c (github.com/multicore-locks/litl, 916469c), exactly:
//  - pass rule: `batch_count` (ctkttkt.c:158-170), a node's budget of BATCH_COUNT = 100 local
//    handoffs (ctkttkt.h:36), refilled only when spent, starting at 0 (memset, ctkttkt.c:64);
//  - release: the global lock, then the local one (ctkttkt.c:174-175);
//  - trylock: a ticket only if nobody holds one, at both levels (ctkttkt.c:109-133).
// ck's cohort (ck_cohort.h) is reachable as c-tkt-tkt:pass-limit=10:pass-rule=1 for the pass rule
// (CK_COHORT_DEFAULT_LOCAL_PASS_LIMIT 10, ck_cohort.h:46), not its detection (a shared counter of
// waiting threads, ck_cohort.h:85-87).
// Both ticket locks are FIFO: nodes take the global lock in the order their heads arrived.
// Layout: Cohort.swift's; the global ticket (next, owner) alone on a 128-byte block, the local one
// on the first cache line of its node's block.
// Parameters: `pass-limit` (100), `pass-rule` (0, LiTL's).

enum CTKTTKT: CohortDefinition {
    typealias Global = TicketGlobal
    typealias Local = TicketLocal
    static let releasesLocalFirst = false

    static let descriptor = LockDescriptor(
        name: "c-tkt-tkt", family: .numa, waiting: .spin,
        paper: "Dice, Marathe & Shavit, PPoPP 2012 (lock cohorting: C-TKT-TKT); defaults LiTL's ctkttkt.c (batch_count 100)",
        supportsTryLock: true,
        options: cohortOptions(passLimit: 100, rule: .litl))
}

typealias CTKTTKTLock = CohortLock<CTKTTKT>
