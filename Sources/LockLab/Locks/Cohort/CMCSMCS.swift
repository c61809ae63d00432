// c-mcs-mcs: lock cohorting with a global MCS lock and an MCS lock per NUMA node.
//
// Paper: D. Dice, V. J. Marathe, N. Shavit, "Lock Cohorting: A General Technique for Designing NUMA
// Locks", PPoPP 2012 (and ACM TOPC 1(2), 2015). The skeleton is Cohort.swift's; this file names the
// two locks and the defaults.
// Idea: a thread queues on its node's MCS lock, then on the global MCS lock unless the previous local
// holder passed the global lock on with the local one (Cohort.swift: record, invariants). The global
// queue node belongs to the node, not to a thread (Cohort.swift, `MCSGlobal`): MCS is not
// thread-oblivious, so the global lock is released before the local one.
// Reference: neither LiTL nor ck ships a c-mcs-mcs; its defaults are LiTL's cohort locks' (the same
// code in cbomcs.c:246-257 and ctkttkt.c:158-170: `batch_count`, a node's budget of BATCH_COUNT =
// 100 local handoffs, cbomcs.h:35, refilled only when spent, starting at 0), so that c-bo-mcs,
// c-tkt-tkt and c-mcs-mcs differ only in their locks. ck_cohort.h's composition (its pass count,
// CK_COHORT_DEFAULT_LOCAL_PASS_LIMIT 10, ck_cohort.h:46) is c-mcs-mcs:pass-limit=10:pass-rule=1.
// Layout: Cohort.swift's; 256 bytes per node (the node's global queue node on its second 128-byte
// block: remote nodes' threads write it), the global tail alone on a 128-byte block.
// Parameters: `pass-limit` (100), `pass-rule` (0, LiTL's).

enum CMCSMCS: CohortDefinition {
    typealias Global = MCSGlobal
    typealias Local = MCSLocal
    static let releasesLocalFirst = false

    static let descriptor = LockDescriptor(
        name: "c-mcs-mcs", family: .numa, waiting: .spin,
        paper: "Dice, Marathe & Shavit, PPoPP 2012 (lock cohorting: C-MCS-MCS); defaults LiTL's cohort rule (batch_count 100, cbomcs.c)",
        supportsTryLock: true,
        options: cohortOptions(passLimit: 100, rule: .litl))
}

typealias CMCSMCSLock = CohortLock<CMCSMCS>
