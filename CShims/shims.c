/* CShims: the few functions that are not worth inlining (called once per thread or per run). */
#define _GNU_SOURCE 1
#include <sched.h>
#include <sys/resource.h>

#include "CShims.h"

#include <string.h>

double cshims_calibrate_cycles_per_ns(unsigned sample_ms)
{
    uint64_t t0 = cshims_monotonic_ns();
    uint64_t c0 = cshims_cycles();
    uint64_t target = t0 + (uint64_t)sample_ms * 1000000ull;
    uint64_t t1;
    do {
        t1 = cshims_monotonic_ns();
    } while (t1 < target);
    uint64_t c1 = cshims_cycles();
    return (double)(c1 - c0) / (double)(t1 - t0);
}

#ifdef __linux__
int cshims_pin_self_to_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int cshims_current_cpu(void) { return sched_getcpu(); }

int cshims_self_affinity_is_process(void)
{
    cpu_set_t self, process;
    if (sched_getaffinity(0, sizeof(self), &self) != 0)
        return -errno;
    if (sched_getaffinity(getpid(), sizeof(process), &process) != 0)
        return -errno;
    return CPU_EQUAL(&self, &process) ? 1 : 0;
}

int cshims_thread_usage_now(cshims_thread_usage *out)
{
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    if (getrusage(RUSAGE_THREAD, &ru) != 0)
        return errno;
    out->user_ns = (uint64_t)ru.ru_utime.tv_sec * 1000000000ull + (uint64_t)ru.ru_utime.tv_usec * 1000ull;
    out->sys_ns = (uint64_t)ru.ru_stime.tv_sec * 1000000000ull + (uint64_t)ru.ru_stime.tv_usec * 1000ull;
    out->voluntary_switches = (uint64_t)ru.ru_nvcsw;
    out->involuntary_switches = (uint64_t)ru.ru_nivcsw;
    return 0;
}

/* Linux's per-thread CPU clock ids (include/linux/posix-timers.h): which clock in the low two bits,
 * the per-thread flag, the complemented tid above. */
static clockid_t cshims_thread_clock(int tid, int which) { return (clockid_t)((~(unsigned)tid) << 3) | 4 | which; }

int cshims_thread_cpu_clocks_now(int tid, cshims_thread_cpu_clocks *out)
{
    enum { prof = 0, virt = 1, sched = 2 };
    struct timespec ts;
    uint64_t v[3];
    const int which[3] = { sched, virt, prof };
    for (int i = 0; i < 3; i++) {
        if (clock_gettime(cshims_thread_clock(tid, which[i]), &ts) != 0)
            return errno;
        v[i] = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    }
    out->sched_ns = v[0];
    out->user_ns = v[1];
    out->prof_ns = v[2];
    return 0;
}

int cshims_thread_start(pthread_t *thread, cshims_thread_fn fn, void *arg, size_t stack_bytes)
{
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc != 0)
        return rc;
    if (stack_bytes > 0)
        pthread_attr_setstacksize(&attr, stack_bytes);
    rc = pthread_create(thread, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return rc;
}
#endif
