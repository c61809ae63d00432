// urcu-memb, urcu-qsbr, urcu-mb, urcu-bp: liburcu's own flavours as the reference beside the lab's
// (Desnoyers, McKenney, Stern, Dagenais, Walpole, "User-Level Implementations of Read-Copy Update",
// IEEE TPDS 2012; Debian liburcu-dev 0.13.2: src/urcu.c built as liburcu-memb and liburcu-mb,
// src/urcu-qsbr.c, src/urcu-bp.c, read sides in include/urcu/static/urcu-{memb,mb,qsbr,bp}.h).
//
// Idea: the same grace-period invariant as the lab's flavours (RCUFlavor.swift), kept by liburcu:
// `synchronize` returns once every read-side section that had begun has ended. What each read
// side costs (through the shim, Sources/CURCU/shim.h: every call below is a call into liburcu's
// shared library, no _LGPL_SOURCE, so nothing of liburcu is inlined here):
// - urcu-memb (liburcu's default): a reader stores a snapshot of the grace-period counter (with a
//   nesting count) into its thread-local reader record and skips the fence; the writer runs
//   membarrier(2) (MEMBARRIER_CMD_PRIVATE_EXPEDITED, registered by liburcu's constructor,
//   urcu_memb_init) so that every running thread fences in its place. Where the kernel refuses
//   it, readers take the full fence themselves (`urcu_memb_has_sys_membarrier`, in `note`).
// - urcu-mb: the same algorithm with a full fence (cmm_smp_mb) in the reader's lock and unlock,
//   and none asked of the kernel.
// - urcu-bp (bulletproof): like memb (membarrier where offered, else fences), but a thread need
//   not register: its first read_lock registers it lazily (a check per read_lock) and a pthread
//   key destructor unregisters it at exit; synchronize also prunes dead threads' records.
// - urcu-qsbr: the read side is empty (read_lock/read_unlock are calls that do nothing but
//   debugging checks); a thread reports a quiescent state between operations
//   (urcu_qsbr_quiescent_state: a load and, while a grace period waits, a store between fences)
//   and goes offline when it leaves; a grace period waits for every online thread's next report.
//   urcu_qsbr_synchronize_rcu takes an online caller offline for the wait itself.
// Invariants: liburcu keeps the per-thread state in TLS (its `rcu_reader` record) and one global
// registry per flavour, so a `Reader` holds nothing and every instance of a flavour shares one
// domain: grace periods wait for every thread of the process registered with that flavour (the
// harness runs one measurement at a time). Registration and unregistration run on the thread
// (the executor's makeContext/freeContext do). A thread registered with urcu-qsbr must report
// quiescent states or go offline: the executor reports one after every operation.
// Orders: liburcu's (cmm_smp_mb is a full fence; membarrier for memb and bp), as in the papers;
// the structures publish and dereference with RCUPointer (a release store, an acquire load).

import CURCU

/// liburcu's default flavour: membarrier(2) on the writer, no fence in the reader.
public struct URCUMemb: RCUFlavor {
    public struct Reader {}

    public static let name = "urcu-memb"
    public static let paper = "Desnoyers et al., IEEE TPDS 2012; liburcu 0.13.2 liburcu-memb (src/urcu.c, RCU_MEMBARRIER), called through the shared library"

    public init(threads: Int, memory: LabMemory, options: LockOptions) throws {}

    public var note: String? {
        curcu_memb_has_sys_membarrier() != 0 ? "liburcu: readers unfenced, writer membarrier(PRIVATE_EXPEDITED)"
                                             : "liburcu: readers fence (the kernel refused membarrier)"
    }

    public func register(thread: Int) -> Reader { curcu_memb_register_thread(); return Reader() }
    public func unregister(_ reader: inout Reader) { curcu_memb_unregister_thread() }

    @inline(__always)
    public func readLock(_ reader: inout Reader) { curcu_memb_read_lock() }
    @inline(__always)
    public func readUnlock(_ reader: inout Reader) { curcu_memb_read_unlock() }

    public func synchronize(_ reader: inout Reader) { curcu_memb_synchronize_rcu() }

    public func deallocate() {}
}

/// liburcu's quiescent-state-based flavour: an empty read side, a report between operations.
public struct URCUQSBR: RCUFlavor {
    public struct Reader {}

    public static let name = "urcu-qsbr"
    public static let paper = "Desnoyers et al., IEEE TPDS 2012 (QSBR, Hart et al.); liburcu 0.13.2 liburcu-qsbr (src/urcu-qsbr.c), called through the shared library"

    public init(threads: Int, memory: LabMemory, options: LockOptions) throws {}

    /// Registers the thread online (urcu_qsbr_register_thread leaves it online).
    public func register(thread: Int) -> Reader { curcu_qsbr_register_thread(); return Reader() }
    /// Offline and out of the registry (urcu_qsbr_unregister_thread goes offline first).
    public func unregister(_ reader: inout Reader) { curcu_qsbr_unregister_thread() }

    @inline(__always)
    public func readLock(_ reader: inout Reader) { curcu_qsbr_read_lock() }
    @inline(__always)
    public func readUnlock(_ reader: inout Reader) { curcu_qsbr_read_unlock() }

    @inline(__always)
    public func quiescentState(_ reader: inout Reader) { curcu_qsbr_quiescent_state() }

    /// urcu_qsbr_synchronize_rcu: an online caller goes offline for the wait and back online.
    public func synchronize(_ reader: inout Reader) { curcu_qsbr_synchronize_rcu() }

    public func deallocate() {}
}

/// liburcu's memory-barrier flavour: a full fence in every read_lock and read_unlock.
public struct URCUMB: RCUFlavor {
    public struct Reader {}

    public static let name = "urcu-mb"
    public static let paper = "Desnoyers et al., IEEE TPDS 2012; liburcu 0.13.2 liburcu-mb (src/urcu.c, RCU_MB), called through the shared library"

    public init(threads: Int, memory: LabMemory, options: LockOptions) throws {}

    public func register(thread: Int) -> Reader { curcu_mb_register_thread(); return Reader() }
    public func unregister(_ reader: inout Reader) { curcu_mb_unregister_thread() }

    @inline(__always)
    public func readLock(_ reader: inout Reader) { curcu_mb_read_lock() }
    @inline(__always)
    public func readUnlock(_ reader: inout Reader) { curcu_mb_read_unlock() }

    public func synchronize(_ reader: inout Reader) { curcu_mb_synchronize_rcu() }

    public func deallocate() {}
}

/// liburcu's bulletproof flavour: lazy registration, membarrier or fences like memb.
public struct URCUBP: RCUFlavor {
    public struct Reader {}

    public static let name = "urcu-bp"
    public static let paper = "Desnoyers et al., IEEE TPDS 2012; liburcu 0.13.2 liburcu-bp (src/urcu-bp.c, lazy registration), called through the shared library"

    public init(threads: Int, memory: LabMemory, options: LockOptions) throws {}

    /// Forces the registration read_lock would make lazily (so the first measured read does not pay it).
    public func register(thread: Int) -> Reader { curcu_bp_register_thread(); return Reader() }
    /// A no-op in liburcu-bp (a thread-exit destructor unregisters).
    public func unregister(_ reader: inout Reader) { curcu_bp_unregister_thread() }

    @inline(__always)
    public func readLock(_ reader: inout Reader) { curcu_bp_read_lock() }
    @inline(__always)
    public func readUnlock(_ reader: inout Reader) { curcu_bp_read_unlock() }

    public func synchronize(_ reader: inout Reader) { curcu_bp_synchronize_rcu() }

    public func deallocate() {}
}

// MARK: call_rcu and the cds_lfht tie (the urcu-lfht entry, RCU/URCULFHT.swift)

/// One of liburcu's flavours with what its reference structures need beyond `RCUFlavor`:
/// `call_rcu`, `rcu_barrier`, and the flavour structure a cds_lfht is tied to.
public protocol LiburcuFlavor: RCUFlavor {
    /// The `flavour=` choice's name (`memb`, `qsbr`, `mb`, `bp`).
    static var shortName: String { get }
    /// liburcu's `rcu_flavor_struct` for this flavour (cds_lfht_new_flavor).
    static var flavorStruct: UnsafePointer<rcu_flavor_struct> { get }
    /// call_rcu: `callback(head)` runs on the flavour's call_rcu thread after a grace period that
    /// began after this call. From a registered (qsbr: online) thread; allowed in a read-side section.
    static func callRCU(_ head: UnsafeMutablePointer<rcu_head>, _ callback: @convention(c) (UnsafeMutablePointer<rcu_head>?) -> Void)
    /// rcu_barrier: returns once every callback queued before it has run. Outside any read-side
    /// section, from a registered thread.
    static func barrier()
}

extension URCUMemb: LiburcuFlavor {
    public static let shortName = "memb"
    public static var flavorStruct: UnsafePointer<rcu_flavor_struct> { curcu_memb_flavor() }
    public static func callRCU(_ head: UnsafeMutablePointer<rcu_head>, _ callback: @convention(c) (UnsafeMutablePointer<rcu_head>?) -> Void) {
        curcu_memb_call_rcu(head, callback)
    }
    public static func barrier() { curcu_memb_barrier() }
}

extension URCUQSBR: LiburcuFlavor {
    public static let shortName = "qsbr"
    public static var flavorStruct: UnsafePointer<rcu_flavor_struct> { curcu_qsbr_flavor() }
    public static func callRCU(_ head: UnsafeMutablePointer<rcu_head>, _ callback: @convention(c) (UnsafeMutablePointer<rcu_head>?) -> Void) {
        curcu_qsbr_call_rcu(head, callback)
    }
    /// An online caller goes offline for the wait (the callbacks' grace periods wait for every
    /// online thread, the caller included) and back online after.
    public static func barrier() {
        curcu_qsbr_thread_offline()
        curcu_qsbr_barrier()
        curcu_qsbr_thread_online()
    }
}

extension URCUMB: LiburcuFlavor {
    public static let shortName = "mb"
    public static var flavorStruct: UnsafePointer<rcu_flavor_struct> { curcu_mb_flavor() }
    public static func callRCU(_ head: UnsafeMutablePointer<rcu_head>, _ callback: @convention(c) (UnsafeMutablePointer<rcu_head>?) -> Void) {
        curcu_mb_call_rcu(head, callback)
    }
    public static func barrier() { curcu_mb_barrier() }
}

extension URCUBP: LiburcuFlavor {
    public static let shortName = "bp"
    public static var flavorStruct: UnsafePointer<rcu_flavor_struct> { curcu_bp_flavor() }
    public static func callRCU(_ head: UnsafeMutablePointer<rcu_head>, _ callback: @convention(c) (UnsafeMutablePointer<rcu_head>?) -> Void) {
        curcu_bp_call_rcu(head, callback)
    }
    public static func barrier() { curcu_bp_barrier() }
}
