/*
 * CShims: the thin C layer under LockLab.
 *
 * What Swift cannot express (or cannot import) lives here, and nothing else:
 *   - C11 <stdatomic.h> operations on plain words with an explicit memory order in the name
 *     (cshims_u32_*, cshims_u64_*, cshims_ptr_*), static inline so Swift inlines them;
 *   - cshims_pause (the spin-wait hint), cshims_compiler_barrier;
 *   - futex wait/wake (FUTEX_PRIVATE_FLAG): syscall(2) is variadic and not importable;
 *   - pinning the calling thread to a CPU: CPU_SET is a macro;
 *   - a cycle counter (rdtsc / cntvct) with calibration against CLOCK_MONOTONIC, ordered reads of
 *     it and a cache-line flush for the coherence probe;
 *   - per-thread getrusage(RUSAGE_THREAD);
 *   - membarrier(2), the asymmetric fence of urcu-memb-style RCU (a variadic syscall).
 * No lock logic lives here: the algorithms are Swift (Sources/LockLab/Locks).
 *
 * The atomics take plain pointers and cast to _Atomic: Swift cannot import _Atomic types, and
 * every word the lab touches atomically is only ever touched through these functions (or with
 * the lock held, for the benchmark's deliberately plain counter).
 */
#ifndef CSHIMS_H
#define CSHIMS_H

/* No _GNU_SOURCE here: defined in this header it changes glibc's enums (__rusage_who) as the
 * Swift importer sees them and clashes with SwiftGlibc. The GNU-only calls (sched_getcpu,
 * pthread_setaffinity_np, RUSAGE_THREAD) sit behind plain functions in shims.c, which defines it. */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __linux__
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

/* The lab's cache-line size and the padding unit for shared words: 128 bytes, two lines, because
 * the adjacent-line prefetcher on x86 pairs lines (docs/performance.md, "False sharing"). */
#define CSHIMS_CACHE_LINE 64
#define CSHIMS_PAD 128

static inline int cshims_cache_line_size(void) { return CSHIMS_CACHE_LINE; }
static inline int cshims_pad_size(void) { return CSHIMS_PAD; }

/* ---- atomics --------------------------------------------------------------------------------
 * One function per (width, operation, order) that the algorithms use. The order is part of the
 * name so that every call site in Swift states its intent, as ck's ck_pr_fence_* do.
 */
#define CSHIMS_ATOMIC_OPS(NAME, T)                                                                 \
    static inline T cshims_##NAME##_load_relaxed(const T *p)                                      \
    { return atomic_load_explicit((const _Atomic T *)p, memory_order_relaxed); }                 \
    static inline T cshims_##NAME##_load_acquire(const T *p)                                      \
    { return atomic_load_explicit((const _Atomic T *)p, memory_order_acquire); }                 \
    static inline T cshims_##NAME##_load_seq_cst(const T *p)                                      \
    { return atomic_load_explicit((const _Atomic T *)p, memory_order_seq_cst); }                 \
    static inline void cshims_##NAME##_store_relaxed(T *p, T v)                                   \
    { atomic_store_explicit((_Atomic T *)p, v, memory_order_relaxed); }                          \
    static inline void cshims_##NAME##_store_release(T *p, T v)                                   \
    { atomic_store_explicit((_Atomic T *)p, v, memory_order_release); }                          \
    static inline void cshims_##NAME##_store_seq_cst(T *p, T v)                                   \
    { atomic_store_explicit((_Atomic T *)p, v, memory_order_seq_cst); }                          \
    static inline T cshims_##NAME##_exchange_acquire(T *p, T v)                                   \
    { return atomic_exchange_explicit((_Atomic T *)p, v, memory_order_acquire); }                \
    static inline T cshims_##NAME##_exchange_release(T *p, T v)                                   \
    { return atomic_exchange_explicit((_Atomic T *)p, v, memory_order_release); }                \
    static inline T cshims_##NAME##_exchange_acq_rel(T *p, T v)                                   \
    { return atomic_exchange_explicit((_Atomic T *)p, v, memory_order_acq_rel); }                \
    /* Seq-cst RMWs: for Dekker-style handshakes on two words (a reader-writer lock's flag and */ \
    /* count), where acq_rel does not order a store before a later load of another word.       */ \
    static inline T cshims_##NAME##_exchange_seq_cst(T *p, T v)                                   \
    { return atomic_exchange_explicit((_Atomic T *)p, v, memory_order_seq_cst); }                \
    /* Compare-exchange (strong). Returns true on success; on failure *expected gets the value  */ \
    /* seen. The failure order is relaxed unless the name says otherwise.                        */ \
    static inline bool cshims_##NAME##_cas_acquire(T *p, T *expected, T desired)                  \
    { return atomic_compare_exchange_strong_explicit((_Atomic T *)p, expected, desired,          \
                                                     memory_order_acquire, memory_order_relaxed); } \
    static inline bool cshims_##NAME##_cas_release(T *p, T *expected, T desired)                  \
    { return atomic_compare_exchange_strong_explicit((_Atomic T *)p, expected, desired,          \
                                                     memory_order_release, memory_order_relaxed); } \
    static inline bool cshims_##NAME##_cas_acq_rel(T *p, T *expected, T desired)                  \
    { return atomic_compare_exchange_strong_explicit((_Atomic T *)p, expected, desired,          \
                                                     memory_order_acq_rel, memory_order_acquire); } \
    /* Seq-cst CAS: a store that must precede a later load of another word (BRAVO's slot, then */ \
    /* the bias flag), as the seq-cst exchange above.                                           */ \
    static inline bool cshims_##NAME##_cas_seq_cst(T *p, T *expected, T desired)                  \
    { return atomic_compare_exchange_strong_explicit((_Atomic T *)p, expected, desired,          \
                                                     memory_order_seq_cst, memory_order_relaxed); } \
    static inline bool cshims_##NAME##_cas_relaxed(T *p, T *expected, T desired)                  \
    { return atomic_compare_exchange_strong_explicit((_Atomic T *)p, expected, desired,          \
                                                     memory_order_relaxed, memory_order_relaxed); } \
    /* The same, expected by value, for callers that do not need the value seen: Swift then     */ \
    /* takes no local's address (which costs a stack-protector check in the calling function).  */ \
    static inline bool cshims_##NAME##_cas_value_acq_rel(T *p, T expected, T desired)             \
    { return atomic_compare_exchange_strong_explicit((_Atomic T *)p, &expected, desired,         \
                                                     memory_order_acq_rel, memory_order_acquire); } \
    static inline bool cshims_##NAME##_cas_value_release(T *p, T expected, T desired)             \
    { return atomic_compare_exchange_strong_explicit((_Atomic T *)p, &expected, desired,         \
                                                     memory_order_release, memory_order_relaxed); } \
    static inline bool cshims_##NAME##_cas_value_acquire(T *p, T expected, T desired)             \
    { return atomic_compare_exchange_strong_explicit((_Atomic T *)p, &expected, desired,         \
                                                     memory_order_acquire, memory_order_relaxed); } \
    static inline bool cshims_##NAME##_cas_value_relaxed(T *p, T expected, T desired)             \
    { return atomic_compare_exchange_strong_explicit((_Atomic T *)p, &expected, desired,         \
                                                     memory_order_relaxed, memory_order_relaxed); }

#define CSHIMS_ATOMIC_ARITH(NAME, T)                                                               \
    static inline T cshims_##NAME##_fetch_add_relaxed(T *p, T v)                                  \
    { return atomic_fetch_add_explicit((_Atomic T *)p, v, memory_order_relaxed); }               \
    static inline T cshims_##NAME##_fetch_add_acquire(T *p, T v)                                  \
    { return atomic_fetch_add_explicit((_Atomic T *)p, v, memory_order_acquire); }               \
    static inline T cshims_##NAME##_fetch_add_release(T *p, T v)                                  \
    { return atomic_fetch_add_explicit((_Atomic T *)p, v, memory_order_release); }               \
    static inline T cshims_##NAME##_fetch_add_acq_rel(T *p, T v)                                  \
    { return atomic_fetch_add_explicit((_Atomic T *)p, v, memory_order_acq_rel); }               \
    static inline T cshims_##NAME##_fetch_add_seq_cst(T *p, T v)                                  \
    { return atomic_fetch_add_explicit((_Atomic T *)p, v, memory_order_seq_cst); }               \
    static inline T cshims_##NAME##_fetch_sub_release(T *p, T v)                                  \
    { return atomic_fetch_sub_explicit((_Atomic T *)p, v, memory_order_release); }               \
    static inline T cshims_##NAME##_fetch_sub_acq_rel(T *p, T v)                                  \
    { return atomic_fetch_sub_explicit((_Atomic T *)p, v, memory_order_acq_rel); }               \
    static inline T cshims_##NAME##_fetch_or_acquire(T *p, T v)                                   \
    { return atomic_fetch_or_explicit((_Atomic T *)p, v, memory_order_acquire); }                \
    static inline T cshims_##NAME##_fetch_or_acq_rel(T *p, T v)                                   \
    { return atomic_fetch_or_explicit((_Atomic T *)p, v, memory_order_acq_rel); }                \
    static inline T cshims_##NAME##_fetch_and_release(T *p, T v)                                  \
    { return atomic_fetch_and_explicit((_Atomic T *)p, v, memory_order_release); }               \
    static inline T cshims_##NAME##_fetch_and_acq_rel(T *p, T v)                                  \
    { return atomic_fetch_and_explicit((_Atomic T *)p, v, memory_order_acq_rel); }

CSHIMS_ATOMIC_OPS(u8, uint8_t)
CSHIMS_ATOMIC_OPS(u16, uint16_t)
CSHIMS_ATOMIC_OPS(u32, uint32_t)
CSHIMS_ATOMIC_OPS(u64, uint64_t)
CSHIMS_ATOMIC_ARITH(u32, uint32_t)
CSHIMS_ATOMIC_ARITH(u64, uint64_t)

/* Pointers: `void **` imports into Swift as UnsafeMutablePointer<UnsafeMutableRawPointer?>. */
typedef void *cshims_ptr_t;
CSHIMS_ATOMIC_OPS(ptr, cshims_ptr_t)

/* Fences, named by intent. */
static inline void cshims_fence_acquire(void) { atomic_thread_fence(memory_order_acquire); }
static inline void cshims_fence_release(void) { atomic_thread_fence(memory_order_release); }
static inline void cshims_fence_seq_cst(void) { atomic_thread_fence(memory_order_seq_cst); }
/* Compiler-only barrier: keeps the benchmark's plain accesses where the source put them. */
static inline void cshims_compiler_barrier(void) { atomic_signal_fence(memory_order_seq_cst); }

/* ---- spinning --------------------------------------------------------------------------------- */
static inline void cshims_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    atomic_signal_fence(memory_order_seq_cst);
#endif
}

/* ---- cycle counter ----------------------------------------------------------------------------
 * rdtsc is not ordered against the surrounding loads; for the start of an interval that is what
 * we want (cheap), and the interval lengths the lab measures (hundreds of cycles up) dwarf the skew.
 */
static inline uint64_t cshims_cycles(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
#endif
}

/* ---- ordered cycle-counter reads and a line flush, for timing one memory operation --------------
 * The coherence probe (Sources/LockLab/Probe) times single loads, stores and atomics, tens to
 * hundreds of cycles, so the reads must not drift across the operation they bracket (Intel SDM
 * vol. 2B, RDTSC/RDTSCP; Paoloni, "How to Benchmark Code Execution Times on Intel IA-32 and IA-64",
 * 2010):
 *   begin: lfence; rdtsc; lfence  earlier instructions have completed before the read, and the
 *                                 timed operation cannot start before it;
 *   end:   rdtscp; lfence         rdtscp waits until every earlier instruction has executed (the
 *                                 timed load has its data); the lfence keeps later ones out.
 * A store is not complete when it executes (it waits in the store buffer), so the probe follows a
 * timed store with cshims_fence_seq_cst (mfence), which waits until the store is globally visible.
 * On aarch64: isb orders the counter read against earlier instructions. */
static inline uint64_t cshims_cycles_begin(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_lfence();
    uint64_t t = __builtin_ia32_rdtsc();
    __builtin_ia32_lfence();
    return t;
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("isb\n\tmrs %0, cntvct_el0\n\tisb" : "=r"(v) :: "memory");
    return v;
#else
    return cshims_cycles();
#endif
}

static inline uint64_t cshims_cycles_end(void)
{
#if defined(__x86_64__) || defined(__i386__)
    unsigned aux;
    uint64_t t = __builtin_ia32_rdtscp(&aux);
    __builtin_ia32_lfence();
    return t;
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("dsb ish\n\tisb\n\tmrs %0, cntvct_el0\n\tisb" : "=r"(v) :: "memory");
    return v;
#else
    return cshims_cycles();
#endif
}

/* Writes the line holding `p` back and invalidates it in every cache of the coherence domain
 * (clflush), then waits for that to finish (mfence: clflush is ordered only by fences). The next
 * access misses to memory: how the probe makes a line that no cache holds. */
static inline void cshims_flush_line(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_clflush(p);
    __builtin_ia32_mfence();
#elif defined(__aarch64__)
    __asm__ __volatile__("dc civac, %0\n\tdsb ish" :: "r"(p) : "memory");
#else
    (void)p;
    atomic_thread_fence(memory_order_seq_cst);
#endif
}

static inline uint64_t cshims_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Busy-wait for `cycles` counter ticks (the harness's critical and non-critical section work). */
static inline void cshims_spin_cycles(uint64_t cycles)
{
    uint64_t end = cshims_cycles() + cycles;
    while (cshims_cycles() < end)
        cshims_pause();
}

/* Cycle-counter ticks per nanosecond, measured against CLOCK_MONOTONIC over `sample_ms`. */
double cshims_calibrate_cycles_per_ns(unsigned sample_ms);

/* ---- futex ------------------------------------------------------------------------------------ */
#ifdef __linux__
/* Sleeps while *addr == expected. Returns 0, or -1 with errno (EAGAIN: value changed; EINTR). */
static inline int cshims_futex_wait(uint32_t *addr, uint32_t expected)
{
    return (int)syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}
/* Wakes at most `count` waiters; returns the number woken or -1. */
static inline int cshims_futex_wake(uint32_t *addr, int count)
{
    return (int)syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}
static inline int cshims_errno(void) { return errno; }

/* membarrier(2) (the kernel's asymmetric fence, urcu-memb's writer side): registers the process
 * for MEMBARRIER_CMD_PRIVATE_EXPEDITED (Linux 4.14) and returns 0, or -1 when the kernel lacks
 * the command or refuses it (ENOSYS, EINVAL, EPERM: a sandbox); then every call makes each CPU
 * that runs a thread of this process execute a full memory barrier before it returns (0), or -1.
 * The numbers are <linux/membarrier.h>'s (MEMBARRIER_CMD_QUERY 0, PRIVATE_EXPEDITED 1 << 3,
 * REGISTER_PRIVATE_EXPEDITED 1 << 4), written out so that an older header still compiles. */
static inline int cshims_membarrier_register_private_expedited(void)
{
    long supported = syscall(SYS_membarrier, 0, 0, 0);
    if (supported < 0 || !(supported & (1 << 3)) || !(supported & (1 << 4)))
        return -1;
    return syscall(SYS_membarrier, 1 << 4, 0, 0) == 0 ? 0 : -1;
}
static inline int cshims_membarrier_private_expedited(void)
{
    return syscall(SYS_membarrier, 1 << 3, 0, 0) == 0 ? 0 : -1;
}
static inline void cshims_sched_yield(void) { sched_yield(); }

/* ---- threads and CPUs ------------------------------------------------------------------------- */
/* Pins the calling thread to one CPU. Returns 0 or an errno value. */
int cshims_pin_self_to_cpu(int cpu);
/* The CPU the caller runs on now (sched_getcpu), or -1. */
int cshims_current_cpu(void);
/* 1 if the calling thread's CPU affinity mask equals the process's (its main thread's): the thread
 * is unpinned; 0 if not; minus an errno value if sched_getaffinity fails. */
int cshims_self_affinity_is_process(void);
/* Online CPUs of this machine. */
static inline int cshims_online_cpus(void) { return (int)sysconf(_SC_NPROCESSORS_ONLN); }
/* Kernel thread id of the caller. */
static inline int cshims_gettid(void) { return (int)syscall(SYS_gettid); }

/* Per-thread resource usage (RUSAGE_THREAD): CPU time in ns and context switches. */
typedef struct {
    uint64_t user_ns;
    uint64_t sys_ns;
    uint64_t voluntary_switches;
    uint64_t involuntary_switches;
} cshims_thread_usage;
int cshims_thread_usage_now(cshims_thread_usage *out);

/* CPU time of any thread of this process, by kernel thread id (getrusage reads only the caller):
 * the thread's per-thread CPU clocks (clock_gettime on the clock ids Linux derives from the tid:
 * ((~tid) << 3) | CPUCLOCK_PERTHREAD_MASK | which, as glibc's pthread_getcpuclockid builds the
 * CPUCLOCK_SCHED one). sched_ns: the scheduler's exact run time; user_ns and prof_ns: the
 * tick-sampled user and user + system times, to split sched_ns. Returns 0, or an errno value
 * (EINVAL: no such thread any more). */
typedef struct {
    uint64_t sched_ns;
    uint64_t user_ns;
    uint64_t prof_ns;
} cshims_thread_cpu_clocks;
int cshims_thread_cpu_clocks_now(int tid, cshims_thread_cpu_clocks *out);

/* pthread_create with a C entry point: Swift passes a @convention(c) function and a context. */
typedef void *(*cshims_thread_fn)(void *);
int cshims_thread_start(pthread_t *thread, cshims_thread_fn fn, void *arg, size_t stack_bytes);
#endif

#endif /* CSHIMS_H */
