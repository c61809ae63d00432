/*
 * cohort.pml: c-bo-mcs, lock cohorting with a global backoff TTAS lock and an MCS lock per NUMA
 * node, of Sources/LockLab/Locks/Cohort/CBOMCS.swift, for spin.
 *
 * Checked (Models/check): mutual exclusion (the assertion on the critical-section count) and
 * absence of deadlock (no invalid end state) for N = 3 threads on 2 NUMA nodes. Thread 1 is on
 * node 0 and threads 2 and 3 choose their node (node labels are symmetric), so that all on one
 * node, two and one, are all explored. Each thread takes the lock by lock() or tryLock() (a
 * nondeterministic choice every time). PASS_LIMIT (the `pass-limit` option, default here 2) is
 * small so that the end of a node's tenure after the limit is reached happens. Also checked with
 * pass-limit 0 (never pass) and 1:
 * check-variants: -DPASS_LIMIT=0 -DPASS_LIMIT=1
 *
 * How the model maps the code: spin interleaves atomic steps over sequentially consistent memory.
 * One Promela statement is one atomic access of the Swift code (a load, a store, an exchange, a
 * CAS); a spin loop is a blocking guard; the global lock's backoff is a delay and has no step.
 * Acquire/release orders are not modelled (ThreadSanitizer and the stress tests look after those).
 * Thread i (1..N) owns MCS node i (next[i], locked[i]); 0 is nil. Per NUMA node d: localTail[d]
 * (the local MCS lock) and the cohort record (passed[d], handoffs[d]); `global` is the TTAS word.
 * The line numbers are CBOMCS.swift's. A thread neither holding nor queued is at `end_idle`.
 *
 * Two modes (Models/check runs both):
 *   default      every thread takes the lock forever: mutual exclusion over unbounded runs, and no
 *                state in which every thread is stuck;
 *   -DROUNDS=2   every thread takes the lock twice and ends: no invalid end state means every
 *                acquisition completes (no waiter is lost while the others go on).
 *
 * Deliberate bugs, to show that the checks bite (Models/check expects spin to report each):
 *   -DBUG=1  tryLock tests the record with the wrong polarity (line 106 as `== 0`): having taken
 *            a free local lock, it returns without the global one, which a thread of the other
 *            node may hold (mutual exclusion violated).
 *   -DBUG=2  unlock hands the local lock over before it writes the record (line 133 before lines
 *            125-126): the successor can read passed == 0 and wait for the global lock its own
 *            cohort holds and nobody will release (deadlock).
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
byte handoffs[2];
byte inCS = 0;

/* Back to idle; the locals are dead there and cleared, so that stale values do not split states. */
#define IDLE d_step { pred = 0; succ = 0; h = 0; ok = 0 }; goto end_idle

active [N] proctype thread()
{
    byte me = _pid + 1;
    bit nd;                                         /* this thread's NUMA node */
    byte pred, succ, h;
    bit ok;
#ifdef ROUNDS
    byte rounds = 0;
#endif

    /* makeContext, lines 78-87: the thread's node picks its local lock and record */
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

lock:                                               /* CBOMCSLock.lock, lines 94-99 */
                                                    /* MCSQueue.acquire, MCSQueue.swift lines 43-56 */
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
    :: passed[nd] != 0 -> goto cs                   /* 97: the global lock came with the local one */
    :: else
    fi;
                                                    /* acquireGlobal, lines 154-168 */
    do
    :: (global == 0);                               /* 158-160: wait until it looks free */
       atomic { ok = (global == 0); global = 1 };   /* 162: exchange(global, 1) == 0 */
       if
       :: ok -> break
       :: else                                      /* 163-166: back off, try again */
       fi
    od;
    goto cs;

trylock:                                            /* CBOMCSLock.tryLock, lines 102-113 */
    next[me] = NIL;                                 /* 182 (tryAcquire) */
    atomic { ok = (localTail[nd] == NIL); if :: ok -> localTail[nd] = me :: else fi };  /* MCSQueue.swift 63: CAS */
    if
    :: !ok -> IDLE                                  /* 104 */
    :: else
    fi;
    if
#if BUG == 1
    :: passed[nd] == 0 -> goto cs                   /* BUG: 106 with the wrong polarity */
#else
    :: passed[nd] != 0 -> goto cs                   /* 106 */
#endif
    :: else
    fi;
    if                                              /* 108: TTAS once */
    :: global == 0 -> atomic { ok = (global == 0); global = 1 }
    :: else -> ok = 0
    fi;
    if
    :: ok -> goto cs
    :: else -> goto release                         /* 111: give the local lock back */
    fi;

cs:
    inCS++;
    assert(inCS == 1);
    inCS--;
#ifdef ROUNDS
    rounds++;
#endif
                                                    /* CBOMCSLock.unlock, lines 116-137 */
    h = handoffs[nd];                               /* 119 */
    succ = next[me];                                /* 122 */
    if
    :: h < PASS_LIMIT && succ != NIL -> goto pass   /* 123: a successor has linked */
    :: h < PASS_LIMIT && succ == NIL ->
        if
        :: localTail[nd] != me -> goto pass         /* 123: one has swapped in, not linked yet */
        :: else -> goto endTenure
        fi
    :: else -> goto endTenure
    fi;

pass:
#if BUG == 2
    (next[me] != NIL);
    succ = next[me];
    locked[succ] = 0;                               /* BUG: handed over before the record */
#endif
    passed[nd] = 1;                                 /* 125 */
    handoffs[nd] = h + 1;                           /* 126 */
#if BUG != 2
    (next[me] != NIL);                              /* 128-131: wait for the link */
    succ = next[me];
    locked[succ] = 0;                               /* 133: hand over the local lock */
#endif
    IDLE;

endTenure:                                          /* endTenure, lines 143-149 */
    passed[nd] = 0;                                 /* 144 */
    handoffs[nd] = 0;                               /* 145 */
    global = 0;                                     /* 147: the global lock first */
                                                    /* 148: then the local one */
release:                                            /* MCSQueue.release, MCSQueue.swift lines 73-91 */
    succ = next[me];                                /* MCSQueue.swift 76 */
    if
    :: succ == NIL ->
        atomic { ok = (localTail[nd] == me); if :: ok -> localTail[nd] = NIL :: else fi };  /* MCSQueue.swift 81 */
        if
        :: ok -> IDLE
        :: else
        fi;
        (next[me] != NIL);                          /* MCSQueue.swift 83-86: wait for the link */
        succ = next[me]
    :: else
    fi;
    locked[succ] = 0;                               /* MCSQueue.swift 90: hand over */
    IDLE;
done:
    skip
}
