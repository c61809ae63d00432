/*
 * cohort.pml: c-bo-mcs, lock cohorting with a global backoff TTAS lock and an MCS lock per NUMA
 * node, for spin: the skeleton of Sources/LockLab/Locks/Cohort/Cohort.swift with the types
 * CBOMCS.swift names (BackoffTTASGlobal and MCSLocal in Cohort.swift, over BackoffTTAS in
 * Spin/Backoff.swift and MCSQueue in Queue/MCSQueue.swift), with LiTL's pass rule (pass-rule=0)
 * and c-bo-mcs's release order (the local lock, then the global one).
 *
 * Checked (Models/check): mutual exclusion (the assertion on the critical-section count) and
 * absence of deadlock (no invalid end state) for N = 3 threads on 2 NUMA nodes. Thread 1 is on
 * node 0 and threads 2 and 3 choose their node (node labels are symmetric), so that all on one
 * node, two and one, are all explored. Each thread takes the lock by lock() or tryLock() (a
 * nondeterministic choice every time). PASS_LIMIT (the `pass-limit` option, default here 2) is
 * small so that a node's budget is spent, refilled and carried over tenures. Also checked with
 * pass-limit 0 (never pass) and 1:
 * check-variants: -DPASS_LIMIT=0 -DPASS_LIMIT=1
 *
 * How the model maps the code: spin interleaves atomic steps over sequentially consistent memory.
 * One Promela statement is one atomic access of the Swift code (a load, a store, an exchange, a
 * CAS); a spin loop is a blocking guard; the global lock's backoff is a delay and has no step.
 * Acquire/release orders are not modelled (ThreadSanitizer and the stress tests look after those).
 * Thread i (1..N) owns MCS node i (next[i], locked[i]); 0 is nil. Per NUMA node d: localTail[d]
 * (the local MCS lock) and the cohort record (passed[d], budget[d]; the budget starts at 0, as
 * LiTL's); `global` is the TTAS word. Line numbers without a file are Cohort.swift's. A thread
 * neither holding nor queued is at `end_idle`.
 *
 * Two modes (Models/check runs both):
 *   default      every thread takes the lock forever: mutual exclusion over unbounded runs, and no
 *                state in which every thread is stuck;
 *   -DROUNDS=2   every thread takes the lock twice and ends: no invalid end state means every
 *                acquisition completes (no waiter is lost while the others go on).
 *
 * Deliberate bugs, to show that the checks bite (Models/check expects spin to report each):
 *   -DBUG=1  tryLock tests the record with the wrong polarity (line 175 as `== 0`): having taken
 *            a free local lock, it returns without the global one, which a thread of the other
 *            node may hold (mutual exclusion violated).
 *   -DBUG=2  unlock hands the local lock over before it writes the record (line 191 before lines
 *            189-190): the successor can read passed == 0 and wait for the global lock its own
 *            cohort holds and nobody will release (deadlock).
 * bug-breaks: 1=mutual-exclusion 2=progress
 */
#define N 3
#define NIL 0
#ifndef PASS_LIMIT
#define PASS_LIMIT 2
#endif

bit global = 0;
byte localTail[2];
byte next[N + 1];
bit locked[N + 1];
bit passed[2];
byte budget[2];
byte inCS = 0;

/* Back to idle; the locals are dead there and cleared, so that stale values do not split states. */
#define IDLE d_step { pred = 0; succ = 0; h = 0; ok = 0; g = 0 }; goto end_idle

active [N] proctype thread()
{
    byte me = _pid + 1;
    bit nd;                                         /* this thread's NUMA node */
    byte pred, succ, h;
    bit ok;
    bit g;                                          /* the global lock is released after the local one */
#ifdef ROUNDS
    byte rounds = 0;
#endif

    /* makeContext, lines 148-155: the thread's node picks its local lock and record */
    if
    :: me == 1 -> nd = 0
    :: me != 1 -> nd = 0
    :: me != 1 -> nd = 1
    fi;

end_idle:
#ifdef ROUNDS
    if
    :: rounds == ROUNDS -> goto done
    :: else
    fi;
#endif
    if
    :: goto lock
    :: goto trylock
    fi;

lock:                                               /* CohortLock.lock, lines 162-168 */
                                                    /* 163: MCSQueue.acquire, MCSQueue.swift lines 44-56 */
    next[me] = NIL;                                 /* MCSQueue.swift 47 */
    locked[me] = 1;                                 /* MCSQueue.swift 48 */
    atomic { pred = localTail[nd]; localTail[nd] = me };   /* MCSQueue.swift 51: exchange */
    if
    :: pred == NIL -> goto haveLocal
    :: else
    fi;
    next[pred] = me;                                /* MCSQueue.swift 53: link behind the predecessor */
    (locked[me] == 0);                              /* MCSQueue.swift 55: spin until handed the local lock */
haveLocal:
    if
    :: passed[nd] != 0 -> goto cs                   /* 166: the global lock came with the local one */
    :: else
    fi;
                                                    /* 167: BackoffTTAS.acquire, Backoff.swift lines 87-107 */
    do
    :: (global == 0);                               /* Backoff.swift 91-98: wait (backing off) until it looks free */
       atomic { ok = (global == 0); global = 1 };   /* Backoff.swift 100: exchange(global, 1) == 0 */
       if
       :: ok -> break
       :: else
       fi
    od;
    goto cs;

trylock:                                            /* CohortLock.tryLock, lines 171-181 */
    next[me] = NIL;                                 /* 172: MCSQueue.tryAcquire, MCSQueue.swift 61 */
    atomic { ok = (localTail[nd] == NIL); if :: ok -> localTail[nd] = me :: else fi };  /* MCSQueue.swift 63: CAS */
    if
    :: !ok -> IDLE                                  /* 172 */
    :: else
    fi;
    if
#if BUG == 1
    :: passed[nd] == 0 -> goto cs                   /* BUG: 175 with the wrong polarity */
#else
    :: passed[nd] != 0 -> goto cs                   /* 175 */
#endif
    :: else
    fi;
    atomic { ok = (global == 0); global = 1 };      /* 176: BackoffTTASGlobal.tryLock, line 250: one exchange */
    if
    :: ok -> goto cs
    :: else -> goto release                         /* 179: give the local lock back */
    fi;

cs:
    inCS++;
    assert(inCS == 1);
    inCS--;
#ifdef ROUNDS
    rounds++;
#endif
                                                    /* CohortLock.unlock, lines 184-195 */
    h = budget[nd];                                 /* 186 */
    if
    :: h == 0 -> goto endTenure                     /* 187: budget spent */
    :: else
    fi;
    if                                              /* 187: MCSLocal.hasWaiters, lines 369-373 */
    :: next[me] != NIL -> goto pass                 /* 371: a successor has linked */
    :: else
    fi;
    if
    :: localTail[nd] != me -> goto pass             /* 372: one has swapped in, not linked yet */
    :: else -> goto endTenure
    fi;

pass:
#if BUG == 2
    (next[me] != NIL);
    succ = next[me];
    locked[succ] = 0;                               /* BUG: handed over before the record */
#endif
    passed[nd] = 1;                                 /* 189 */
    budget[nd] = h - 1;                             /* 190 */
#if BUG != 2
                                                    /* 191: MCSQueue.handOver, MCSQueue.swift lines 96-106 */
    (next[me] != NIL);                              /* MCSQueue.swift 97-102: wait for the link */
    succ = next[me];
    locked[succ] = 0;                               /* MCSQueue.swift 105: hand over the local lock */
#endif
    IDLE;

endTenure:                                          /* endTenure, lines 202-215 */
    if                                              /* 204: refill a spent budget if a waiter is seen */
    :: h == 0 ->
        if
        :: next[me] != NIL -> budget[nd] = PASS_LIMIT        /* 371, 205 */
        :: else ->
            if
            :: localTail[nd] != me -> budget[nd] = PASS_LIMIT    /* 372, 205 */
            :: else
            fi
        fi
    :: else
    fi;
    passed[nd] = 0;                                 /* 207 */
    g = 1;                                          /* 208-210: the local lock first, then the global one */
release:                                            /* MCSQueue.release, MCSQueue.swift lines 74-91 */
    succ = next[me];                                /* MCSQueue.swift 76 */
    if
    :: succ == NIL ->
        atomic { ok = (localTail[nd] == me); if :: ok -> localTail[nd] = NIL :: else fi };  /* MCSQueue.swift 81 */
        if
        :: ok -> goto released
        :: else
        fi;
        (next[me] != NIL);                          /* MCSQueue.swift 83-86: wait for the link */
        succ = next[me]
    :: else
    fi;
    locked[succ] = 0;                               /* MCSQueue.swift 90: hand over */
released:
    if
    :: g -> global = 0                              /* 210: BackoffTTAS.release, Backoff.swift 132 */
    :: else
    fi;
    IDLE;
done:
    skip
}
