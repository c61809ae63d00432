/*
 * park.pml: spin-then-park (Sources/LockLab/Locks/WaitingPolicy.swift, SpinThenParkWaiting) on the
 * MCS queue of Sources/LockLab/Locks/Queue/MCSQueue.swift, i.e. `mcs-stp`, for spin.
 *
 * Checked (Models/check): mutual exclusion (the assertion on the critical-section count) and no
 * lost wake-up (no invalid end state: a thread asleep with nobody left to wake it) for N = 3
 * threads, each taking the lock by lock() or tryLock(). A waiter may stop spinning at any moment
 * (its spin budget ran out: `spin-limit`, any value, 0 included) and park; a sleeping waiter may
 * also wake spuriously (FUTEX_WAIT returns 0 or EINTR; once per thread, so that a sleeper nobody
 * wakes stays asleep and shows as an invalid end state), and every wake-up rechecks the word.
 *
 * How the model maps the code: as mcs.pml (one Promela statement per atomic access, sequentially
 * consistent memory, thread i owns node i, 0 is nil). locked[i] is MCSNode.locked: 1 waiting, 2
 * parked (`parkedMark`), 0 granted. The futex is sleeping[i]: FUTEX_WAIT(word, 2) is one atomic
 * step that sleeps only if the word still reads 2 (the kernel's compare under its hash-bucket
 * lock), FUTEX_WAKE clears sleeping[i] if set. Only thread i ever waits on locked[i]. Line numbers
 * are WaitingPolicy.swift's (W) and MCSQueue.swift's (Q).
 *
 * Two modes (Models/check runs both): unbounded (mutual exclusion, no state where every thread is
 * stuck) and -DROUNDS=2 (every acquisition completes: a waiter asleep forever is an invalid end).
 *
 * Deliberate bugs (Models/check expects spin to report them):
 *   -DBUG=1  park returns after FUTEX_WAIT without rechecking the word: a spurious wake-up enters
 *            the critical section without the grant (mutual exclusion violated).
 *   -DBUG=2  the grant reads the word, then stores 0, two steps instead of one exchange: a waiter
 *            that parks in between is never woken (lost wake-up).
 * bug-breaks: 1=mutual-exclusion 2=progress
 */
#define N 3
#define NIL 0
#define WAITING 1
#define PARKED 2

byte tail = NIL;
byte next[N + 1];
byte locked[N + 1];
bit sleeping[N + 1];
byte inCS = 0;

#define IDLE d_step { pred = 0; succ = 0; ok = 0; old = 0 }; goto end_idle

active [N] proctype thread()
{
    byte me = _pid + 1;
    byte pred, succ, old;
    bit ok, spurious;
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

lock:                                               /* Q acquire, lines 43-56 */
    next[me] = NIL;                                 /* Q47 */
    locked[me] = WAITING;                           /* Q48 */
    atomic { pred = tail; tail = me };              /* Q51: exchange(tail, me) */
    if
    :: pred == NIL -> goto cs
    :: else
    fi;
    next[pred] = me;                                /* Q53 */
                                                    /* Q55 -> W wait, lines 133-141 */
spin:
    if
    :: locked[me] != WAITING -> goto cs             /* W137: granted while spinning */
    :: goto park                                    /* W138: the spin budget ran out */
    fi;
park:                                               /* W park, lines 158-171 */
    atomic { ok = (locked[me] == WAITING); if :: ok -> locked[me] = PARKED :: else fi };  /* W160: CAS 1 -> 2 */
    if
    :: !ok -> goto cs                               /* W162: granted between load and CAS */
    :: else
    fi;
sleep:
    atomic { if :: locked[me] == PARKED -> sleeping[me] = 1 :: else fi };   /* W167: FUTEX_WAIT(word, 2) */
    if
    :: sleeping[me] == 0                            /* woken, or EAGAIN */
    :: spurious == 0 -> spurious = 1; sleeping[me] = 0  /* spurious wake-up, EINTR (once, so that
                                                       a sleeper cannot leave every sleep) */
    fi;
#if BUG == 1
    goto cs;
#endif
    if
    :: locked[me] == PARKED -> goto sleep           /* W168-169: recheck */
    :: else -> goto cs
    fi;

trylock:                                            /* Q tryAcquire, lines 59-64 */
    next[me] = NIL;
    atomic { ok = (tail == NIL); if :: ok -> tail = me :: else fi };   /* Q63 */
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
                                                    /* Q release, lines 73-91 */
    succ = next[me];
    if
    :: succ == NIL ->
        atomic { ok = (tail == me); if :: ok -> tail = NIL :: else fi };   /* Q81 */
        if
        :: ok -> IDLE
        :: else
        fi;
        (next[me] != NIL);                          /* Q83-86 */
        succ = next[me]
    :: else
    fi;
                                                    /* Q90 -> W grant, lines 187-193 */
#if BUG == 2
    old = locked[succ];
    locked[succ] = 0;
#else
    atomic { old = locked[succ]; locked[succ] = 0 };    /* W190: exchange_release */
#endif
    if
    :: old == PARKED -> sleeping[succ] = 0          /* W191: FUTEX_WAKE */
    :: else
    fi;
    IDLE;
done:
    skip
}
