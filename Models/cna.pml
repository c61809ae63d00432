/*
 * cna.pml: the compact NUMA-aware lock of Sources/LockLab/Locks/NUMA/CNA.swift, with its secondary
 * queue (CNAQueue.swift, shared with qspinlock-cna), for spin.
 *
 * Checked (Models/check): mutual exclusion (the assertion on the critical-section count) and
 * absence of deadlock (no invalid end state) for N = 3 threads on 2 NUMA nodes. Each thread picks
 * its node once, nondeterministically (so every assignment of threads to nodes is explored: all on
 * one node, two and one), then takes the lock forever, by lock() or tryLock() (a nondeterministic
 * choice every time). keep_lock_local (the `keep-local-bits` option, the paper's 2^-16 flush) is a
 * pseudo-random draw at each release: the model lets it go either way every time, or never keep
 * local with KEEP_BITS=0 (MCS order). THRESHOLD (the `threshold` count option, off by default in the
 * code, 2 here) is small so that the count splice happens; 0 is no count bound. The time threshold
 * (`threshold-ns`) reads the cycle counter, so the model lets it go either way at every check.
 * secondarySinceCycles and the seed therefore carry nothing the model needs and are left out.
 * Also checked with MCS order, no count bound and a count of 1:
 * check-variants: -DKEEP_BITS=0 -DTHRESHOLD=0 -DTHRESHOLD=1
 *
 * How the model maps the code: spin interleaves atomic steps over sequentially consistent memory.
 * One Promela statement is one atomic access of the Swift code (a load, a store, an exchange, a
 * CAS); a spin loop is a blocking guard. Acquire/release orders are not modelled (ThreadSanitizer
 * and the stress tests look after those). Thread i (1..N) owns queue node i; 0 is nil; next[],
 * spin[], numaNode[], localHandoffs[] are CNANode's fields; `tail` is the lock. spin[] holds 0
 * (waiting), NOSEC = 1 (granted, nothing parked) or k + 1 for "granted; the secondary queue's tail
 * is node k" (the Swift code stores the tail's address); the queue is circular: next[k] is its
 * first node. Line numbers are CNA.swift's, and CNAQueue.swift's where marked Q. A thread neither
 * holding nor queued is at `end_idle`, a valid end state.
 *
 * Two modes (Models/check runs both):
 *   default      every thread takes the lock forever: mutual exclusion over unbounded runs, and no
 *                state in which every thread is stuck;
 *   -DROUNDS=2   every thread takes the lock twice and ends: no invalid end state means every
 *                acquisition completes, i.e. no waiter is ever lost while the others go on (which
 *                the unbounded mode cannot see: a stranded waiter does not stop the others).
 *
 * Deliberate bugs, to show that the checks bite (Models/check expects spin to report each):
 *   -DBUG=1  unlockSlow grants the secondary queue's head before its tail CAS (lines 233-234 the
 *            wrong way round): when the CAS fails, passLock grants a second thread (mutual
 *            exclusion violated; spin may first meet the deadlock that follows, as an invalid
 *            end state, and finds the assertion with -E).
 *   -DBUG=2  the inline unlock ignores the secondary queue (line 214 without `spin == noSecondary`)
 *            and frees the lock while waiters are parked: they wait forever (a lost waiter, found
 *            with ROUNDS).
 * bug-breaks: 1=mutual-exclusion 2=progress
 */
#define N 3
#define NIL 0
#define NOSEC 1
#ifndef THRESHOLD
#define THRESHOLD 2
#endif
#ifndef KEEP_BITS
#define KEEP_BITS 16
#endif

byte tail = NIL;
byte next[N + 1];
byte spin[N + 1];
bit numaNode[N + 1];
byte localHandoffs[N + 1];
byte inCS = 0;

/* Back to idle. The locals are dead there: they are cleared on the way, so that states that differ
 * only in stale locals are one state (this keeps the search to seconds). */
#define IDLE d_step { pred = 0; nx = 0; s = 0; head = 0; e = 0; cand = 0; last = 0; succ = 0; \
                      grant = 0; ok = 0; keepLocal = 0; parked = 0; found = 0 }; goto end_idle

active [N] proctype thread()
{
    byte me = _pid + 1;
    byte pred, nx, s, head, e, cand, last, succ, grant;
    bit ok, keepLocal, parked, found;
#ifdef ROUNDS
    byte rounds = 0;
#endif

    /* makeContext, line 170: the thread's node, written once before the node is published.
     * Node labels are symmetric, so thread 1 is on node 0 and threads 2 and 3 choose. */
    if
    :: me == 1 -> numaNode[me] = 0
    :: me != 1 -> numaNode[me] = 0
    :: me != 1 -> numaNode[me] = 1
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

lock:                                               /* CNALock.lock, lines 180-197 */
    next[me] = NIL;                                 /* 182 */
    spin[me] = 0;                                   /* 183 */
    atomic { pred = tail; tail = me };              /* 186: exchange */
    if
    :: pred == NIL -> spin[me] = NOSEC; goto cs     /* 187-190: nil,-,- -> me,1,- */
    :: else
    fi;
    next[pred] = me;                                /* 193: link behind the predecessor */
    (spin[me] != 0);                                /* 196: wait until granted */
    goto cs;

trylock:                                            /* CNALock.tryLock, lines 200-207 */
    next[me] = NIL;                                 /* 202 */
    spin[me] = NOSEC;                               /* 203 */
    atomic { ok = (tail == NIL); if :: ok -> tail = me :: else fi };   /* 206: CAS(tail, nil, me) */
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

                                                    /* CNALock.unlock, lines 210-220 */
    nx = next[me];                                  /* 214: next (acquire) */
    s = spin[me];                                   /* 214: our own spin (stable while we hold) */
#if BUG == 2
    if
    :: nx == NIL ->
#else
    if
    :: nx == NIL && s == NOSEC ->
#endif
        atomic { ok = (tail == me); if :: ok -> tail = NIL :: else fi };   /* 217: me,1,- -> nil,-,- */
        if
        :: ok -> IDLE
        :: else
        fi
    :: else
    fi;
                                                    /* unlockSlow, lines 224-247 */
    s = spin[me];                                   /* 225 */
    nx = next[me];                                  /* 226 */
    if
    :: nx == NIL ->
        if
        :: s != NOSEC ->
            e = s - 1;                              /* 231: the secondary queue's tail E */
            head = next[e];                         /* 232: detach, Q 104 */
            next[e] = NIL;                          /* 232: Q 105, before E becomes the tail */
#if BUG == 1
            spin[head] = NOSEC;                     /* BUG: S granted before the CAS below */
#endif
            atomic { ok = (tail == me); if :: ok -> tail = e :: else fi };  /* 233: me,S,S..E -> E,1,- */
            if
#if BUG == 1
            :: ok -> IDLE
#else
            :: ok -> spin[head] = NOSEC; IDLE                      /* 234-235: S holds */
#endif
            :: else -> next[e] = head               /* 237: reattach, Q 112 */
            fi
        :: else
        fi;
        (next[me] != NIL);                          /* 241-244: wait for the arrival's link */
        nx = next[me]
    :: else
    fi;
    /* passLock, lines 252-297. The decision reads only our own node (localHandoffs[me] and seed[me]
     * were written before our grant and nobody writes them while we hold) and the clock: one atomic
     * step. keep_lock_local's draw (line 254) may go either way unless KEEP_BITS == 0 (never). */
    atomic {
        parked = (s != NOSEC);                      /* 253 */
        if                                          /* 254: keepLocalDraw, lines 301-307 */
        :: KEEP_BITS > 0 -> keepLocal = 1
        :: keepLocal = 0
        fi;
        if
        :: parked && keepLocal ->
            if
            :: THRESHOLD > 0 -> keepLocal = (localHandoffs[me] < THRESHOLD)   /* 257-259 */
            :: else
            fi;
            if
            :: keepLocal ->                         /* 260-263: the age check may go either way */
                if
                :: keepLocal = 1
                :: keepLocal = 0
                fi
            :: else
            fi
        :: else
        fi;
        found = 0
    };
    if
    :: keepLocal ->                                 /* 266-268: findSameNode, Q lines 69-89 */
        if
        :: numaNode[nx] == numaNode[me] ->          /* Q 74: the successor is local */
            succ = nx; grant = s; found = 1
        :: else ->
            last = nx;                              /* Q 75 */
            cand = next[nx];                        /* Q 77 */
            do
            :: cand == NIL -> break                 /* Q 78: no local waiter */
            :: cand != NIL && numaNode[cand] == numaNode[me] ->     /* Q 80 */
                /* Q 83: append nx..last (cut out of the main queue), Q lines 54-62 */
                if
                :: s == NOSEC ->
                    next[last] = nx                 /* Q 60: they form the secondary queue, a circle */
                :: else ->
                    e = s - 1;
                    head = next[e];                 /* Q 56 */
                    next[e] = nx;                   /* Q 57: behind the parked ones */
                    next[last] = head               /* Q 58: the circle closed at last */
                fi;
                succ = cand; grant = last + 1; found = 1       /* 270: spin names the new tail */
                break
            :: cand != NIL && numaNode[cand] != numaNode[me] ->
                last = cand;                        /* Q 85 */
                cand = next[cand]                   /* Q 86 */
            od
        fi
    :: else
    fi;
    if
    :: found ->
        if
        /* 271-284. The count is read only with THRESHOLD > 0 (line 257): without a bound the model
         * stores 0, so that an ever-growing count does not multiply the states. */
        :: grant != NOSEC && parked -> localHandoffs[succ] = (THRESHOLD > 0 -> localHandoffs[me] + 1 : 0)
        :: grant != NOSEC && !parked -> localHandoffs[succ] = (THRESHOLD > 0 -> 1 : 0)
        :: else
        fi;
        spin[succ] = grant;                         /* 286: grant the local waiter */
        IDLE
    :: else
    fi;
    if
    :: parked ->                                    /* 289-292: *,E,S..E -> *,1,- */
        e = s - 1;                                  /* 291: spliceFront, Q lines 94-98 */
        head = next[e];                             /* Q 95 */
        next[e] = nx;                               /* Q 96: splice S..E in front of N */
        spin[head] = NOSEC                          /* 292: S holds */
    :: else ->
        spin[nx] = NOSEC                            /* 295: MCS handoff */
    fi;
    IDLE
done:
    skip
}
