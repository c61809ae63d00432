/*
 * qspinlock.pml: the Linux queued spinlock of Sources/LockLab/Locks/Kernel/QSpinlock.swift (QSpinlock with
 * its MCS slow path, QSpinlockMCS), for spin.
 *
 * Checked (Models/check): mutual exclusion (the assertion on the critical-section count) and
 * absence of deadlock (no invalid end state) for N = 3 threads, each taking the lock forever by
 * lock() or tryLock(), so that spin explores the fast path, the pending waiter, the queue, the
 * hand-over from the pending waiter to the queue head and from head to head; with -DROUNDS=2 every
 * thread takes the lock twice and ends, so that a queued waiter that is never made the head (a lost
 * waiter) is an invalid end state. Three threads reach every transition: A holds, B is pending,
 * C queues as head; A, back, queues behind C.
 *
 * How the model maps the code: the word's three fields are three variables, `locked`, `pending`
 * and `tail` (a thread id, 0: none), so that the byte and half-word stores of the Swift code
 * (the locked byte, the pending byte, locked+pending, the tail half) are single assignments and
 * the 32-bit operations (CAS, fetch_or, loads) are atomic blocks over all three. One Promela
 * statement is one atomic access; a spin loop is a blocking guard; a bounded spin is a loop that
 * may stop at any time. Thread i (1..N) owns node i: next[i] and qlocked[i] are QSpinlockNode's
 * `next` and `locked`. Memory orders are not modelled (sequentially consistent memory): TSan and
 * the stress tests look after those. Line numbers are QSpinlock.swift's.
 *
 * Deliberate bugs, to show that the checks bite (Models/check expects spin to report them):
 *   -DBUG=1  the queue head waits only for the owner, not for the pending waiter, to go away (the
 *            kernel's *,x,y -> *,0,0 made *,x,0): head and pending waiter both take the lock
 *            (mutual exclusion violated);
 *   -DBUG=2  the head that saw itself as the tail clears the tail with plain stores instead of the
 *            CAS: a waiter that queued behind it meanwhile is never made the head (lost waiter).
 * bug-breaks: 1=mutual-exclusion 2=progress
 */
#define N 3
#define NIL 0

bit locked = 0;
bit pending = 0;
byte tail = NIL;
byte next[N + 1];
bit qlocked[N + 1];
byte inCS = 0;

/* Back to idle; the locals are dead there and cleared, so that stale values do not split states. */
#define IDLE d_step { pred = 0; succ = 0; ok = 0; vl = 0; vp = 0; vt = 0 }; goto end_idle
/* The 32-bit word as one value: 0,0,0 (free, nobody waiting). */
#define FREE (locked == 0 && pending == 0 && tail == NIL)

active [N] proctype thread()
{
    byte me = _pid + 1;
    byte pred, succ, vt;
    bit ok, vl, vp;
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

lock:                                               /* lock(), lines 276-280 */
    atomic { ok = FREE; if :: ok -> locked = 1 :: else fi };   /* 278: CAS 0,0,0 -> 0,0,1 */
    if
    :: ok -> goto cs
    :: else
    fi;
                                                    /* lockSlow, lines 297-334 */
    atomic { vl = locked; vp = pending; vt = tail };            /* 299: value = load */
    do                                              /* 301-308: a pending hand-over in progress: */
    :: (vl == 0 && vp == 1 && vt == NIL) ->         /* wait a bounded (any) number of re-reads */
        atomic { vl = locked; vp = pending; vt = tail }
    :: break
    od;
    if
    :: (vp == 1 || vt != NIL) -> goto queue         /* 310-313: pending or queued: queue */
    :: else
    fi;
    atomic { vl = locked; vp = pending; vt = tail; pending = 1 };   /* 315: fetch_or pending */
    if
    :: (vp == 1 || vt != NIL) ->                    /* 318-324: contention: undo and queue */
        if
        :: vp == 0 -> pending = 0                   /* 320: clear our pending bit */
        :: else
        fi;
        goto queue
    :: else
    fi;
    if
    :: vl == 1 -> (locked == 0)                     /* 326-330: 0,1,1 -> *,1,0 */
    :: else
    fi;
    d_step { pending = 0; locked = 1 };             /* 333: 0,1,0 -> 0,0,1 (16-bit store) */
    goto cs;

queue:                                              /* queue, lines 338-386 */
    qlocked[me] = 0;                                /* 341 */
    next[me] = NIL;                                 /* 342 */
    atomic { ok = FREE; if :: ok -> locked = 1 :: else fi };   /* 345-346: trylock */
    if
    :: ok -> goto cs
    :: else
    fi;
    atomic { pred = tail; tail = me };              /* 349: p,*,* -> n,*,* */
    succ = NIL;
    if
    :: pred != NIL ->
        next[pred] = me;                            /* 354: link behind the predecessor */
        (qlocked[me] != 0);                         /* 356-358: wait to be the head */
        succ = next[me]                             /* 360 */
    :: else
    fi;
#if BUG == 1
    atomic { (locked == 0) -> vt = tail };          /* bug: pending ignored */
#else
    atomic { (locked == 0 && pending == 0) -> vt = tail };     /* 367-371: *,x,y -> *,0,0 */
#endif
    if
    :: vt == me ->                                  /* 373-375: we are the last queued */
#if BUG == 2
        d_step { tail = NIL; locked = 1 };          /* bug: no CAS */
        goto cs
#else
        atomic { ok = (tail == me && locked == 0 && pending == 0);  /* 206: CAS n,0,0 -> 0,0,1 */
                 if :: ok -> tail = NIL; locked = 1 :: else fi };
        if
        :: ok -> goto cs
        :: else
        fi
#endif
    :: else
    fi;
    locked = 1;                                     /* 378: *,*,0 -> *,*,1 */
    if
    :: succ == NIL -> (next[me] != NIL); succ = next[me]      /* 380-384: wait for the link */
    :: else
    fi;
    qlocked[succ] = 1;                              /* 212: passLock, the next head */
    goto cs;

trylock:                                            /* tryLock, lines 283-287 */
    atomic { ok = FREE; if :: ok -> locked = 1 :: else fi };   /* 285-286: only from 0,0,0 */
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
    locked = 0;                                     /* 292: unlock, *,*,1 -> *,*,0 */
    IDLE;
done:
    skip
}
