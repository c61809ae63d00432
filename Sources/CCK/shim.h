/*
 * Concurrency Kit (libck-dev), the C reference locks. ck's lock functions are static inline in its
 * headers, so Swift inlines them exactly as a C benchmark would. The only additions are wrappers
 * for what ck writes as macros (initialisers), so that the Swift side never re-states ck's layout.
 */
#include <ck_spinlock.h>
#include <ck_rwlock.h>
#include <ck_pflock.h>
#include <ck_brlock.h>
#include <string.h>

static inline void cck_fas_init(ck_spinlock_fas_t *l) { ck_spinlock_fas_init(l); }
static inline void cck_ticket_init(ck_spinlock_ticket_t *l) { ck_spinlock_ticket_init(l); }
static inline void cck_mcs_init(ck_spinlock_mcs_t *queue) { ck_spinlock_mcs_init(queue); }
static inline size_t cck_mcs_node_size(void) { return sizeof(struct ck_spinlock_mcs); }
static inline size_t cck_clh_node_size(void) { return sizeof(struct ck_spinlock_clh); }
static inline size_t cck_brlock_reader_size(void) { return sizeof(struct ck_brlock_reader); }

/*
 * The yardstick for the harness's own cost: a bare C loop around ck's fas lock, incrementing a
 * counter in the critical section, nothing else. `locklab overhead` runs the same lock through the
 * harness at one thread and compares ns/op. (A measurement reference, not a lock: no lock logic.)
 */
static inline void cck_bare_fas_loop(ck_spinlock_fas_t *lock, uint64_t *counter, uint64_t iterations)
{
    for (uint64_t i = 0; i < iterations; i++) {
        ck_spinlock_fas_lock(lock);
        *(volatile uint64_t *)counter += 1;
        ck_spinlock_fas_unlock(lock);
    }
}
