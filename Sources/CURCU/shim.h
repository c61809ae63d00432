/*
 * liburcu (Debian liburcu-dev 0.13.2), the reference RCU flavours: urcu-memb (liburcu's default,
 * sys_membarrier), urcu-qsbr, urcu-mb and urcu-bp, each its own shared library with its own
 * flavour-prefixed symbols (urcu_memb_read_lock, urcu_qsbr_quiescent_state, ...), all four linked
 * into one process.
 *
 * Licence and cost: this header does NOT define _LGPL_SOURCE, so every wrapper below is a call
 * into liburcu's exported functions in the shared library (liburcu is LGPL-2.1, linked
 * dynamically; the lab's code inlines none of it). The read-side fast path is therefore one call
 * through the PLT per read_lock and per read_unlock (and per quiescent_state): what any non-LGPL
 * program pays, not the inlined _urcu_*_read_lock a C benchmark built with _LGPL_SOURCE gets.
 *
 * Swift imports none of liburcu's function-like macros (rcu_read_lock and friends are macros
 * mapped onto the flavour's symbols by urcu/map/<flavour>.h), so the wrappers name the prefixed symbols
 * directly; each flavour header clears its map at its end (urcu/map/clear.h), so the four can be
 * included together. Functions liburcu declares static inline no-ops (urcu_bp_unregister_thread,
 * the quiescent-state calls of memb, mb and bp) are wrapped the same way for a uniform surface.
 */
#include <urcu/urcu-memb.h>
#include <urcu/urcu-qsbr.h>
#include <urcu/urcu-mb.h>
#include <urcu/urcu-bp.h>
#include <urcu/rculfhash.h>
#include <stdint.h>
#include <stdlib.h>

/* Declared only in the LGPL static header (urcu/static/urcu-memb.h); exported by liburcu-memb.so:
 * 1 when its constructor registered MEMBARRIER_CMD_PRIVATE_EXPEDITED (readers skip the fence),
 * 0 when the kernel refused it (readers fence). */
extern int urcu_memb_has_sys_membarrier;

/* urcu/call-rcu.h and urcu/flavor.h are include-guarded, so only the first flavour included (memb)
 * got its declarations mapped; the other three are declared here as liburcu exports them. */
void urcu_qsbr_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head));
void urcu_mb_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head));
void urcu_bp_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head));
void urcu_qsbr_barrier(void);
void urcu_mb_barrier(void);
void urcu_bp_barrier(void);
extern const struct rcu_flavor_struct urcu_qsbr_flavor;
extern const struct rcu_flavor_struct urcu_mb_flavor;
extern const struct rcu_flavor_struct urcu_bp_flavor;

/* Published pointers, flavour-independent (urcu/pointer.h; without _LGPL_SOURCE its macros call
 * the *_sym functions every flavour library exports). rcu_dereference: the caller's load
 * (CMM_LOAD_SHARED, a volatile load) then the library's read dependency barrier;
 * rcu_assign_pointer: a write barrier (cmm_smp_wmb) then the store; rcu_xchg_pointer: the same
 * barrier, then an atomic exchange returning the old pointer. */
static inline void *curcu_dereference(void *const *slot) { return rcu_dereference_sym(CMM_LOAD_SHARED(*slot)); }
static inline void curcu_assign_pointer(void **slot, void *value) { (void)rcu_set_pointer_sym(slot, value); }
static inline void *curcu_xchg_pointer(void **slot, void *value) { return rcu_xchg_pointer_sym(slot, value); }

/* urcu-memb */
static inline void curcu_memb_register_thread(void) { urcu_memb_register_thread(); }
static inline void curcu_memb_unregister_thread(void) { urcu_memb_unregister_thread(); }
static inline void curcu_memb_read_lock(void) { urcu_memb_read_lock(); }
static inline void curcu_memb_read_unlock(void) { urcu_memb_read_unlock(); }
static inline void curcu_memb_synchronize_rcu(void) { urcu_memb_synchronize_rcu(); }
static inline void curcu_memb_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head)) { urcu_memb_call_rcu(head, func); }
static inline void curcu_memb_barrier(void) { urcu_memb_barrier(); }
static inline int curcu_memb_has_sys_membarrier(void) { return urcu_memb_has_sys_membarrier; }

/* urcu-qsbr: a registered thread is online; it must report quiescent states (or go offline) or
 * every grace period waits for it. synchronize_rcu from an online thread takes it offline for the
 * wait itself. */
static inline void curcu_qsbr_register_thread(void) { urcu_qsbr_register_thread(); }
static inline void curcu_qsbr_unregister_thread(void) { urcu_qsbr_unregister_thread(); }
static inline void curcu_qsbr_read_lock(void) { urcu_qsbr_read_lock(); }
static inline void curcu_qsbr_read_unlock(void) { urcu_qsbr_read_unlock(); }
static inline void curcu_qsbr_quiescent_state(void) { urcu_qsbr_quiescent_state(); }
static inline void curcu_qsbr_thread_online(void) { urcu_qsbr_thread_online(); }
static inline void curcu_qsbr_thread_offline(void) { urcu_qsbr_thread_offline(); }
static inline void curcu_qsbr_synchronize_rcu(void) { urcu_qsbr_synchronize_rcu(); }
static inline void curcu_qsbr_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head)) { urcu_qsbr_call_rcu(head, func); }
static inline void curcu_qsbr_barrier(void) { urcu_qsbr_barrier(); }

/* urcu-mb */
static inline void curcu_mb_register_thread(void) { urcu_mb_register_thread(); }
static inline void curcu_mb_unregister_thread(void) { urcu_mb_unregister_thread(); }
static inline void curcu_mb_read_lock(void) { urcu_mb_read_lock(); }
static inline void curcu_mb_read_unlock(void) { urcu_mb_read_unlock(); }
static inline void curcu_mb_synchronize_rcu(void) { urcu_mb_synchronize_rcu(); }
static inline void curcu_mb_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head)) { urcu_mb_call_rcu(head, func); }
static inline void curcu_mb_barrier(void) { urcu_mb_barrier(); }

/* urcu-bp: registration is lazy (the first read_lock registers the thread; a thread-exit
 * destructor unregisters it); register_thread forces it, unregister_thread is a no-op. */
static inline void curcu_bp_register_thread(void) { urcu_bp_register_thread(); }
static inline void curcu_bp_unregister_thread(void) { urcu_bp_unregister_thread(); }
static inline void curcu_bp_read_lock(void) { urcu_bp_read_lock(); }
static inline void curcu_bp_read_unlock(void) { urcu_bp_read_unlock(); }
static inline void curcu_bp_synchronize_rcu(void) { urcu_bp_synchronize_rcu(); }
static inline void curcu_bp_call_rcu(struct rcu_head *head, void (*func)(struct rcu_head *head)) { urcu_bp_call_rcu(head, func); }
static inline void curcu_bp_barrier(void) { urcu_bp_barrier(); }

/* call_rcu (all flavours): `func(head)` runs on the flavour's call_rcu worker thread after a grace
 * period that began after the call; rcu_barrier waits until every callback queued before it has
 * run. The caller is a registered thread (memb, mb, bp) or an online one (qsbr); rcu_barrier is
 * called outside any read-side section (an online qsbr caller goes offline for it first). */

/*
 * cds_lfht (liburcu-cds, urcu/rculfhash.h): the lock-free resizable hash table, as the reference
 * structure on the hashtable workload (LockLab's Workloads/URCULFHashTable.swift). The table is
 * opaque; each table is tied to one flavour at creation (cds_lfht_new_flavor), whose call_rcu its
 * resizes use. Items are malloc'd one per put and freed by call_rcu, as liburcu's own
 * tests/benchmark/test_urcu_hash does: the reference structure's cost includes malloc and free
 * (glibc's per-thread caches), which is what a program using cds_lfht pays; the lab's own twins
 * use a preallocated pool instead, and a comparison should say so.
 * Only wrappers and the two callbacks the table needs live here: the key match and the free.
 */
struct curcu_lfht_item {
    struct cds_lfht_node node; /* first: an item's address is its node's */
    uint64_t key;
    uint64_t value;
    struct rcu_head rcu;
};

/* cds_lfht_match_fct: the node's key equals *key. */
static inline int curcu_lfht_match(struct cds_lfht_node *node, const void *key) {
    return ((const struct curcu_lfht_item *)node)->key == *(const uint64_t *)key;
}

/* The call_rcu callback: frees the item holding `head`. */
static inline void curcu_lfht_item_reclaim(struct rcu_head *head) {
    free(caa_container_of(head, struct curcu_lfht_item, rcu));
}

/* A table of `buckets` initial buckets (a power of two), resized automatically (never below it),
 * with node accounting off (the lab keeps its own count); NULL when it cannot be allocated. */
static inline struct cds_lfht *curcu_lfht_new(unsigned long buckets, const struct rcu_flavor_struct *flavor) {
    return cds_lfht_new_flavor(buckets, buckets, 0, CDS_LFHT_AUTO_RESIZE, flavor, NULL);
}
static inline const struct rcu_flavor_struct *curcu_memb_flavor(void) { return &urcu_memb_flavor; }
static inline const struct rcu_flavor_struct *curcu_qsbr_flavor(void) { return &urcu_qsbr_flavor; }
static inline const struct rcu_flavor_struct *curcu_mb_flavor(void) { return &urcu_mb_flavor; }
static inline const struct rcu_flavor_struct *curcu_bp_flavor(void) { return &urcu_bp_flavor; }
static inline int curcu_lfht_destroy(struct cds_lfht *ht) { return cds_lfht_destroy(ht, NULL); }

/* A fresh item (key, value), or NULL when malloc fails. */
static inline struct curcu_lfht_item *curcu_lfht_item_new(uint64_t key, uint64_t value) {
    struct curcu_lfht_item *item = malloc(sizeof *item);
    if (item) {
        cds_lfht_node_init(&item->node);
        item->key = key;
        item->value = value;
    }
    return item;
}
static inline void curcu_lfht_item_free_now(struct curcu_lfht_item *item) { free(item); }

/* The hash is the key itself (keys are 0..<keys; the table orders chains by the bit-reversed hash,
 * and the low bits pick the bucket, as the locked twin's `key & mask`). Inside a read-side section. */
static inline struct curcu_lfht_item *curcu_lfht_lookup(struct cds_lfht *ht, uint64_t key) {
    struct cds_lfht_iter iter;
    cds_lfht_lookup(ht, (unsigned long)key, curcu_lfht_match, &key, &iter);
    return (struct curcu_lfht_item *)cds_lfht_iter_get_node(&iter);
}

/* Adds `item`, replacing the node of its key if there is one (atomically: the replaced node is
 * the one whose removal this commit is), which it returns; NULL when the key was absent. */
static inline struct curcu_lfht_item *curcu_lfht_add_replace(struct cds_lfht *ht, struct curcu_lfht_item *item) {
    return (struct curcu_lfht_item *)cds_lfht_add_replace(ht, (unsigned long)item->key, curcu_lfht_match,
                                                          &item->key, &item->node);
}

/* 0 when this call removed `item`; negative when it was already removed. */
static inline int curcu_lfht_del(struct cds_lfht *ht, struct curcu_lfht_item *item) {
    return cds_lfht_del(ht, &item->node);
}

/* Traversal (inside a read-side section): the first item, then the one after `item` (NULL at the end). */
static inline struct curcu_lfht_item *curcu_lfht_first(struct cds_lfht *ht, struct cds_lfht_iter *iter) {
    cds_lfht_first(ht, iter);
    return (struct curcu_lfht_item *)cds_lfht_iter_get_node(iter);
}
static inline struct curcu_lfht_item *curcu_lfht_next(struct cds_lfht *ht, struct cds_lfht_iter *iter) {
    cds_lfht_next(ht, iter);
    return (struct curcu_lfht_item *)cds_lfht_iter_get_node(iter);
}
