/*
 * qsbr.pml: the lab's QSBR grace period (Sources/LockLab/RCU/QSBR.swift, `rcu-qsbr`, with
 * GracePeriodState.waitForReaders of RCUFlavor.swift) and the reclamation it guards
 * (Reclamation.swift, reclaim=sync: publish, synchronize, poison the old node), for spin.
 *
 * Checked (Models/check): no use after free (the assertion in the reader: a node a reader loaded
 * in its read-side section is not freed when the reader uses it) and no deadlock (no invalid end
 * state) for N = 2 readers and one writer that makes WRITES = 3 updates (check-variants: N = 3
 * with WRITES = 2, which keeps the search within seconds). A reader, forever: a read-side section
 * (dereference the current node, use it) and the quiescent state after it
 * (RCUExecutor.executeRead), or a pass offline and back online (what a thread's own synchronize
 * does to its line; register and unregister use the same two calls). The writer:
 * registered (online), each update publishes a fresh node, waits for a grace period (synchronize:
 * offline, bump the counter, wait for every line, online), frees the old node, and reports a
 * quiescent state (RCUExecutor.execute); then it unregisters. Nodes are never reused, so `freed`
 * is the poison the structures check (a reused node would be caught the same way, as poison
 * first). The counter is the 64-bit single-phase one of liburcu's urcu-qsbr (no parity flip):
 * odd, from 1, +2 per grace period, so at most 1 + 2 * WRITES here (it never wraps in 64 bits).
 *
 * How the model maps the code: spin interleaves atomic steps over sequentially consistent memory.
 * One Promela statement is one atomic access of the Swift code (a load or a store of the counter,
 * a line or the published pointer); a store of a line together with the thread's own copy of it
 * (`seen`, read by nobody else) is one step. The wait loop `while v != 0 && v < g { pause }` is a
 * blocking guard per line, in the code's order (lines 0..N-1 the readers', N the writer's own).
 * The seq_cst fences of QSBR.swift are marked `fence` where the code has them and are no-ops here:
 * on sequentially consistent memory every access is already ordered; what they forbid on real
 * hardware (store buffering between a reader's line store and its next loads, against the
 * writer's counter store and its loads of the lines; QSBR.swift's header) is for TSan and the
 * stress tests, as in the other models. The grace-period mutex and the writer lock are not
 * modelled: one writer drives every grace period and is the only one to store the pointer and the
 * counter. Line numbers are QSBR.swift's (Q), RCUFlavor.swift's (F) and RCUExecutor.swift's (E).
 *
 * A reader between operations is at `end_idle`, a valid end state; a writer stuck in its wait when
 * no thread can move is an invalid end state, which spin reports.
 *
 * Three modes (Models/check runs all three):
 *   default      readers read forever: no use after free over unbounded reads, every interleaving
 *                of the writer's grace periods with them, and no state where every thread is stuck;
 *   -DROUNDS=2   each reader reads twice, then unregisters (goes offline) and ends: no invalid end
 *                state means every grace period ends (the writer is never left waiting for a
 *                reader that reported or left);
 *   -DLIVENESS   readers read forever, and once the writer is done their going on is progress
 *                (`progress_run`); pan -DNP, `-l -f`: no non-progress cycle under weak fairness
 *                means the writer finishes every grace period while readers keep reporting (a
 *                reader's report is not undone: once the wait passes a line it would pass it again).
 *
 * Deliberate bugs, to show that the checks bite (Models/check expects spin to report them):
 *   -DBUG=1  the wait skips the last reader's line: that reader's section, begun before the
 *            unlinking, still uses the node the writer frees (use after free).
 *   -DBUG=2  the writer waits for the lines before it bumps the counter (it checks them against
 *            the old value, which every reader that reported has): the grace period ends at once
 *            (use after free).
 *   -DBUG=3  a reader reports a quiescent state inside its read-side section, between loading the
 *            node and using it (use after free).
 *   -DBUG=4  synchronize does not take its caller offline first: the wait meets the writer's own
 *            line, older than the new counter, and waits for itself forever (deadlock).
 *   -DBUG=5  the wait loads each line once and spins on that value (a plain load hoisted out of
 *            the loop): it never sees a reader's report, and waits forever while the readers go
 *            on (a non-progress cycle).
 * bug-breaks: 1=use-after-free 2=use-after-free 3=use-after-free 4=progress 5=liveness
 * check-variants: -DN=3
 * check-liveness: -DLIVENESS
 */
#ifndef N
#define N 2
#endif
#ifndef WRITES
#if N >= 3
#define WRITES 2                            /* keeps N = 3's search within seconds */
#else
#define WRITES 3
#endif
#endif
#define W N                                 /* the writer's line index */
#define OFFLINE 0

byte gp = 1;                                /* state.word, GracePeriodState(initial: 1) */
byte line[N + 1];                           /* state.lines: 0 offline, else a counter value */
byte ptr = 0;                               /* the published pointer: node 0 at first */
bit freed[WRITES + 1];                      /* node k's poison (Reclamation.poison) */
#ifdef LIVENESS
bit writerDone;                             /* every update made and its node freed */
#endif

/* QSBR.online, Q55-60: the line takes the counter; `fence` before any read. */
#define ONLINE(me)  g = gp; atomic { line[me] = g; seen = g; g = 0 } /* fence */
/* QSBR.offline, Q64-69: `fence` after the last read, then 0, `fence`. */
#define OFFLINE_(me) /* fence */ atomic { line[me] = OFFLINE; seen = 0 } /* fence */
/* QSBR.quiescentState, Q79-86: nothing unless the counter moved; else `fence`, store, `fence`. */
#define QUIESCENT(me) \
    g = gp; \
    if \
    :: g == seen -> g = 0 \
    :: else -> /* fence */ atomic { line[me] = g; seen = g; g = 0 } /* fence */ \
    fi

active [N] proctype reader()
{
    byte me = _pid;                         /* the reader's thread index: its line */
    byte g, seen, p;
#ifdef ROUNDS
    byte rounds = 0;
#endif

    ONLINE(me);                             /* Q45-49: register */
end_idle:
#ifdef ROUNDS
    if
    :: rounds == ROUNDS -> goto leave
    :: else
    fi;
#endif
#ifdef LIVENESS
    if
    :: writerDone -> progress_run: skip     /* readers going on once the writer is done: progress */
    :: else
    fi;
#endif
    if
    :: goto read
    :: goto pause
    fi;

read:                                       /* E100-106: executeRead */
                                            /* Q72: readLock, empty */
    p = ptr;                                /* RCUPointer.dereference: acquire load */
#if BUG == 3
    QUIESCENT(me);
#endif
    assert(!freed[p]);                      /* the structure loads the node's words: not poison */
    p = 0;                                  /* Q75: readUnlock, empty */
    QUIESCENT(me);                          /* E104 */
#ifdef ROUNDS
    rounds++;
#endif
    goto end_idle;

pause:                                      /* offline, then online (Q91, Q102 on its own line) */
    OFFLINE_(me);
    ONLINE(me);
    goto end_idle;

#ifdef ROUNDS
leave:
    OFFLINE_(me)                            /* Q51: unregister */
#endif
}

active proctype writer()
{
    byte g, seen, old, i;
#if BUG == 5
    byte v;
#endif
    byte k = 1;                             /* the node the next update publishes */
    bit wasOnline;

    ONLINE(W);                              /* Q45-49: register */
    do
    :: k > WRITES -> break
    :: else ->
                                            /* E89-92: under the writer lock (one writer here) */
        old = ptr;                          /* RCUSnapshot: the current node */
        ptr = k;                            /* RCUPointer.assign: release store; retire(old) */
                                            /* E93: reclaim, batch 1: Reclamation.waitAndMove */
                                            /* Q89-103: synchronize */
        wasOnline = (seen != 0);            /* Q90 */
#if BUG == 4
        /* fence */
#else
        if
        :: wasOnline -> OFFLINE_(W)         /* Q91 */
        :: else /* fence */
        fi;
#endif
                                            /* Q92: gpMutex.lock: one writer, never contended */
#if BUG == 2
        g = gp;                             /* the lines checked against the counter before the bump */
#else
        g = gp + 2;                         /* Q94 */
        gp = g;                             /* Q95 */
#endif
        /* fence */                         /* Q97 */
        i = 0;                              /* Q98 -> F175-185: waitForReaders(past: g) */
        do
        :: i > N -> break
#if BUG == 1
        :: i == N - 1 -> i++                /* the last reader's line skipped */
        :: i <= N && i != N - 1 ->
#else
        :: i <= N ->
#endif
#if BUG == 5
            v = line[i];                    /* the line loaded once, outside the loop */
            (v == OFFLINE || v >= g);
            v = 0;
#else
            (line[i] == OFFLINE || line[i] >= g);   /* F180-181: acquire load until 0 or >= g */
#endif
            i++
        od;
#if BUG == 2
        gp = g + 2;                         /* the bump, after the wait */
#endif
        /* fence */                         /* Q100 */
                                            /* Q101: gpMutex.unlock */
        atomic { g = 0; i = 0 };
        if
        :: wasOnline -> ONLINE(W)           /* Q102 */
        :: else /* fence */
        fi;
        atomic { freed[old] = 1; old = 0; wasOnline = 0 };   /* waitAndMove: poison the old node */
        QUIESCENT(W);                       /* E94 */
        k++
    od;
    OFFLINE_(W);                            /* Q51: unregister (freeContext) */
#ifdef LIVENESS
    writerDone = 1
#endif
}
