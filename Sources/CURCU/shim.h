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

/* Declared only in the LGPL static header (urcu/static/urcu-memb.h); exported by liburcu-memb.so:
 * 1 when its constructor registered MEMBARRIER_CMD_PRIVATE_EXPEDITED (readers skip the fence),
 * 0 when the kernel refused it (readers fence). */
extern int urcu_memb_has_sys_membarrier;

/* urcu-memb */
static inline void curcu_memb_register_thread(void) { urcu_memb_register_thread(); }
static inline void curcu_memb_unregister_thread(void) { urcu_memb_unregister_thread(); }
static inline void curcu_memb_read_lock(void) { urcu_memb_read_lock(); }
static inline void curcu_memb_read_unlock(void) { urcu_memb_read_unlock(); }
static inline void curcu_memb_synchronize_rcu(void) { urcu_memb_synchronize_rcu(); }
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

/* urcu-mb */
static inline void curcu_mb_register_thread(void) { urcu_mb_register_thread(); }
static inline void curcu_mb_unregister_thread(void) { urcu_mb_unregister_thread(); }
static inline void curcu_mb_read_lock(void) { urcu_mb_read_lock(); }
static inline void curcu_mb_read_unlock(void) { urcu_mb_read_unlock(); }
static inline void curcu_mb_synchronize_rcu(void) { urcu_mb_synchronize_rcu(); }

/* urcu-bp: registration is lazy (the first read_lock registers the thread; a thread-exit
 * destructor unregisters it); register_thread forces it, unregister_thread is a no-op. */
static inline void curcu_bp_register_thread(void) { urcu_bp_register_thread(); }
static inline void curcu_bp_unregister_thread(void) { urcu_bp_unregister_thread(); }
static inline void curcu_bp_read_lock(void) { urcu_bp_read_lock(); }
static inline void curcu_bp_read_unlock(void) { urcu_bp_read_unlock(); }
static inline void curcu_bp_synchronize_rcu(void) { urcu_bp_synchronize_rcu(); }
