/*
 * mcs.pml: the MCS queue lock of Sources/LockLab/Locks/Queue/MCSQueue.swift, for spin.
 *
 * Checked (Models/check): mutual exclusion (the assertion on the critical-section count) and
 * absence of deadlock (no invalid end state) for N = 3 threads, each taking the lock forever, by
 * lock() or by tryLock() (a nondeterministic choice every time), so that spin explores every
 * interleaving of arrivals, trylocks, hand-overs and the reuse of each thread's node.
 *
 * How the model maps the code: spin interleaves atomic steps over sequentially consistent memory.
 * One Promela statement is one atomic access of the Swift code (a load, a store, an exchange, a
 * CAS), and a spin loop `while x != 0 { pause }` is a blocking guard `(x == 0)`. The acquire and
 * release orders of the Swift code are not modelled: ThreadSanitizer and the stress tests look
 * after those. Thread i (1..N) owns node i; 0 is nil; next[i] and locked[i] are MCSNode's fields;
 * `tail` is the lock word. The line numbers are MCSQueue.swift's (enum MCSQueue, which mcs and the cohort locks share).
 *
 * A thread that is neither holding nor queued is at `end_idle`, a valid end state; a thread
 * blocked anywhere else when no thread can move is a deadlock, which spin reports.
 *
 * Two modes (Models/check runs both):
 *   default      every thread takes the lock forever: mutual exclusion over unbounded runs, and no
 *                state in which every thread is stuck;
 *   -DROUNDS=2   every thread takes the lock twice and ends: no invalid end state means every
 *                acquisition completes (no waiter is lost while the others go on).
 *
 * Deliberate bugs, to show that the checks bite (Models/check expects spin to report them):
 *   -DBUG=1  tryLock tests the tail and then stores it, two steps instead of one CAS: two threads
 *            can both find the queue empty (mutual exclusion violated).
 *   -DBUG=2  unlock returns when its tail CAS fails instead of waiting for the successor's link:
 *            the successor is never handed the lock (deadlock).
 * bug-breaks: 1=mutual-exclusion 2=progress
 */
#define N 3
#define NIL 0

byte tail = NIL;
byte next[N + 1];
bit locked[N + 1];
byte inCS = 0;

/* Back to idle; the locals are dead there and cleared, so that stale values do not split states. */
#define IDLE d_step { pred = 0; succ = 0; ok = 0 }; goto end_idle

active [N] proctype thread()
{
    byte me = _pid + 1;
    byte pred, succ;
    bit ok;
#ifdef ROUNDS
    byte rounds = 0;
#endif

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

lock:                                               /* MCSQueue.acquire, lines 43-56 */
    next[me] = NIL;                                 /* 47: next = nil */
    locked[me] = 1;                                 /* 48: locked = 1 */
    atomic { pred = tail; tail = me };              /* 51: predecessor = exchange(tail, me) */
    if
    :: pred == NIL -> goto cs                       /* 51: nil predecessor: we hold it */
    :: else
    fi;
    next[pred] = me;                                /* 53: link behind the predecessor */
    (locked[me] == 0);                              /* 55: spin until handed the lock */
    goto cs;

trylock:                                            /* MCSQueue.tryAcquire, lines 59-64 */
    next[me] = NIL;                                 /* 61 */
#if BUG == 1
    ok = (tail == NIL);
    if :: ok -> tail = me :: else fi;
#else
    atomic { ok = (tail == NIL); if :: ok -> tail = me :: else fi };   /* 63: CAS(tail, nil, me) */
#endif
    if
    :: ok -> goto cs
    :: else -> IDLE
    fi;

cs:
    inCS++;
    assert(inCS == 1);
    inCS--;
#ifdef ROUNDS
    rounds++;
#endif

                                                    /* MCSQueue.release, lines 73-91 */
    succ = next[me];                                /* 76 */
    if
    :: succ == NIL ->
        atomic { ok = (tail == me); if :: ok -> tail = NIL :: else fi };   /* 81: CAS(tail, me, nil) */
        if
        :: ok -> IDLE                               /* 81: alone: the lock is free */
        :: else
        fi;
#if BUG == 2
        IDLE;
#endif
        (next[me] != NIL);                          /* 83-86: wait for the successor's link */
        succ = next[me]
    :: else
    fi;
    locked[succ] = 0;                               /* 90: hand over */
    IDLE;
done:
    skip
}
