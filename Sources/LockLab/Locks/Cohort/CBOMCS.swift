// c-bo-mcs: lock cohorting with a global backoff test-and-test-and-set lock and an MCS lock per node.
//
// Paper: D. Dice, V. J. Marathe, N. Shavit, "Lock Cohorting: A General Technique for Designing NUMA
// Locks", PPoPP 2012 (and ACM TOPC 1(2), 2015). The skeleton is Cohort.swift's; this file names the
// two locks and the defaults.
// Idea: a thread queues on its node's MCS lock, then takes the global TTAS lock unless the previous
// local holder passed the global lock on with the local one (Cohort.swift: record, invariants).
// Reference: LiTL's src/cbomcs.c (github.com/multicore-locks/litl, 916469c), exactly:
//  - pass rule: `batch_count` (cbomcs.c:246-257), a node's budget of BATCH_COUNT = 100 local
//    handoffs (cbomcs.h:35), refilled only when spent, starting at 0 (memset, cbomcs.c:169);
//  - global lock: `__backoff_mutex_lock` (cbomcs.c:130-148): while the word reads held, pause
//    `delay` iterations and double it; DEFAULT_BACKOFF_DELAY 1 << 9 (cbomcs.h:38), doubling while
//    below MAX_BACKOFF_DELAY (1 << 20) - 1 (cbomcs.h:39), so delays 512, 1024, ..., 2^20 pauses;
//    trylock one exchange (cbomcs.c:155-160);
//  - cohort detection `tail != me` (cbomcs.c:126-128; `next != nil` first, which implies it);
//  - release: the local lock, then the global one (cbomcs.c:260-261).
// ck's cohort (ck_cohort.h) is reachable as c-bo-mcs:pass-limit=10:pass-rule=1 for the pass rule
// (CK_COHORT_DEFAULT_LOCAL_PASS_LIMIT 10, ck_cohort.h:46); not its backoff (ck_backoff.h: the same
// constants, but in compiler-barrier iterations, after each failed exchange of a FAS lock) nor its
// detection (a shared counter of waiting threads, ck_cohort.h:85-87).
// The global lock is not FIFO: which node's cohort gets it next is a race between the nodes' heads.
// Layout: Cohort.swift's; the global word alone on a 128-byte block.
// Parameters: `pass-limit` (100), `pass-rule` (0, LiTL's).

enum CBOMCS: CohortDefinition {
    typealias Global = BackoffTTASGlobal
    typealias Local = MCSLocal
    static let releasesLocalFirst = true

    static let descriptor = LockDescriptor(
        name: "c-bo-mcs", family: .numa, waiting: .spin,
        paper: "Dice, Marathe & Shavit, PPoPP 2012 (lock cohorting: C-BO-MCS); defaults LiTL's cbomcs.c (batch_count 100, backoff 2^9..2^20 pauses while held)",
        supportsTryLock: true,
        options: cohortOptions(passLimit: 100, rule: .litl))
}

typealias CBOMCSLock = CohortLock<CBOMCS>
