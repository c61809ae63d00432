"""Lock families (as `locklab list` groups them) and one fixed style per lock.

A lock's colour, marker and line style depend only on its label, never on
which other locks a folder holds, so `mcs` looks the same in every figure,
experiment and machine. A Swift lock and its Concurrency Kit twin share a hue
and a marker: the Swift one solid with a filled marker, the ck one dashed
with a hollow marker. A label with explicit options (`cna:threshold=1000`)
keeps its base lock's hue, dotted, with a marker chosen from the label.
Locks the table does not know get a hue from a hash of their base name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

# Families in `locklab list` order (Sources/LockLab/Locks/Lock.swift,
# LockFamily) and their members (Registry.swift). A test compares this with
# `locklab list --csv` when the binary is built.
FAMILY_ORDER = ("baseline", "ck-reference", "spin", "queue",
                "concurrency-restriction", "numa-aware", "kernel",
                "reader-writer", "rcu", "delegation", "harness", "other")

FAMILIES = {
    "no-lock": "harness", "null": "harness",   # null: its name before no-lock
    "pthread-mutex": "baseline", "pthread-adaptive": "baseline",
    "pthread-spin": "baseline", "swift-mutex": "baseline",
    "ck-fas": "ck-reference", "ck-ticket": "ck-reference",
    "ck-mcs": "ck-reference", "ck-clh": "ck-reference",
    "ck-rwlock": "ck-reference", "ck-pflock": "ck-reference",
    "ck-brlock": "ck-reference",
    "tas": "spin", "ttas": "spin", "backoff": "spin", "ticket": "spin",
    "anderson": "spin",
    "clh": "queue", "clh-stp": "queue", "mcs": "queue", "mcs-stp": "queue",
    "malthusian": "concurrency-restriction",
    "malthusian-stp": "concurrency-restriction",
    "c-bo-mcs": "numa-aware", "c-tkt-tkt": "numa-aware",
    "c-mcs-mcs": "numa-aware", "hmcs": "numa-aware", "cna": "numa-aware",
    "cna-stp": "numa-aware", "shfl": "numa-aware", "shfl-b": "numa-aware",
    "qspinlock-cna": "numa-aware",
    "qspinlock": "kernel", "futex-mutex": "kernel", "futex-spin": "kernel",
    "rwlock": "reader-writer", "seqlock": "reader-writer",
    "pthread-rwlock": "reader-writer", "pthread-rwlock-wp": "reader-writer",
    "pf-ticket": "reader-writer", "qrwlock": "reader-writer",
    "brlock": "reader-writer", "c-rw-wp": "reader-writer",
    "bravo": "reader-writer",
    "rcu-qsbr": "rcu", "rcu-ebr": "rcu", "rcu-memb": "rcu",
    "urcu-memb": "rcu", "urcu-qsbr": "rcu", "urcu-mb": "rcu", "urcu-bp": "rcu",
    "urcu-lfht": "rcu",
    "flat-combining": "delegation", "cc-synch": "delegation",
    "h-synch": "delegation", "rcl": "delegation", "ffwd": "delegation",
    "nr": "delegation",
}

# The harness's no-lock loop is drawn with the baselines (a panel of one
# series would waste space).
PANEL_OF_FAMILY = {"harness": "baseline"}

# Drawn in grey in every panel that does not hold them, as a yardstick.
BASELINES = ("pthread-mutex", "mcs")
BASELINE_GREYS = {"pthread-mutex": "0.45", "mcs": "0.70"}

# Concurrency Kit twin -> the Swift lock it mirrors (same hue and marker).
CK_TWINS = {"ck-fas": "tas", "ck-ticket": "ticket", "ck-mcs": "mcs",
            "ck-clh": "clh", "ck-rwlock": "rwlock", "ck-pflock": "pf-ticket",
            "ck-brlock": "brlock"}

# Waiting-policy variant -> the lock it varies (same hue and marker, dash-dot):
# the spin-then-park versions (-stp) and shfl's blocking one.
VARIANTS = {"clh-stp": "clh", "mcs-stp": "mcs", "malthusian-stp": "malthusian",
            "cna-stp": "cna", "shfl-b": "shfl",
            "pthread-rwlock-wp": "pthread-rwlock"}

# One hue per base lock, distinct within each family (tab10, then Dark2 for
# the NUMA-aware locks so that they differ from the spin locks too).
COLOURS = {
    "tas": "#1f77b4", "ticket": "#ff7f0e", "mcs": "#2ca02c",
    "clh": "#d62728", "ttas": "#9467bd", "backoff": "#8c564b",
    "anderson": "#e377c2",
    "pthread-mutex": "#17becf", "pthread-adaptive": "#bcbd22",
    "pthread-spin": "#393b79", "swift-mutex": "#843c39", "null": "#000000",
    "c-bo-mcs": "#1b9e77", "c-tkt-tkt": "#d95f02", "c-mcs-mcs": "#7570b3",
    "hmcs": "#e7298a", "cna": "#66a61e", "shfl": "#e6ab02",
    "malthusian": "#a6761d", "qspinlock-cna": "#1f78b4",
    "qspinlock": "#e41a1c", "futex-mutex": "#377eb8", "futex-spin": "#4daf4a",
    "no-lock": "#000000",
    "flat-combining": "#1b9e77", "cc-synch": "#d95f02", "h-synch": "#7570b3",
    "rcl": "#e7298a", "ffwd": "#66a61e", "nr": "#fb9a99",
    # Reader-writer: hues apart from tas, ticket, mcs and clh, whose ck twins share the
    # ck-reference panel with ck-rwlock, ck-pflock and ck-brlock.
    "rwlock": "#8c564b", "seqlock": "#6a3d9a",
    "pthread-rwlock": "#17becf", "pf-ticket": "#bcbd22", "qrwlock": "#e41a1c",
    "brlock": "#e377c2", "c-rw-wp": "#1b9e77", "bravo": "#000080",
    # RCU: the lab's flavours in dark hues, liburcu's in light ones.
    "rcu-qsbr": "#d62728", "rcu-ebr": "#2ca02c", "rcu-memb": "#1f77b4",
    "urcu-qsbr": "#ff9896", "urcu-memb": "#aec7e8", "urcu-mb": "#9467bd", "urcu-bp": "#8c564b",
    "urcu-lfht": "#b15928",
}
MARKERS = {
    "tas": "o", "ticket": "s", "mcs": "^", "clh": "D", "ttas": "v",
    "backoff": "P", "anderson": "X",
    "pthread-mutex": "o", "pthread-adaptive": "s", "pthread-spin": "D",
    "swift-mutex": "^", "null": "x",
    "c-bo-mcs": "o", "c-tkt-tkt": "s", "c-mcs-mcs": "^", "hmcs": "D",
    "cna": "v", "shfl": "P", "malthusian": "h", "qspinlock-cna": "X",
    "qspinlock": "o", "futex-mutex": "s", "futex-spin": "^", "no-lock": "x",
    "flat-combining": "o", "cc-synch": "s", "h-synch": "^", "rcl": "D",
    "ffwd": "v", "nr": "P",
    "rwlock": "o", "seqlock": "s", "pthread-rwlock": "D", "pf-ticket": "^",
    "qrwlock": "v", "brlock": "P", "c-rw-wp": "X", "bravo": "h",
    "rcu-qsbr": "o", "rcu-ebr": "s", "rcu-memb": "^", "urcu-qsbr": "D",
    "urcu-memb": "v", "urcu-mb": "P", "urcu-bp": "X", "urcu-lfht": "h",
}
FALLBACK_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                    "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
FALLBACK_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h", "<", ">")


@dataclass(frozen=True)
class Style:
    color: str
    marker: str
    linestyle: str        # "-" Swift lock, "--" ck twin, "-." waiting
                          # variant (-stp, shfl-b), ":" option variant
    hollow: bool = False  # ck twins: hollow markers


def base_name(label: str) -> str:
    """`cna:threshold=1000` -> `cna`."""
    return str(label).split(":", 1)[0]


def family(label: str) -> str:
    return FAMILIES.get(base_name(label), "other")


def panel_family(label: str) -> str:
    f = family(label)
    return PANEL_OF_FAMILY.get(f, f)


def _pick(seq, text: str):
    h = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16)
    return seq[h % len(seq)]


def lock_style(label: str) -> Style:
    """The fixed style of a lock label (see the module docstring)."""
    base = base_name(label)
    twin = CK_TWINS.get(base)
    variant = VARIANTS.get(base) or (base[:-4] if base.endswith("-stp")
                                     else None)
    key = twin or variant or base
    color = COLOURS.get(key) or _pick(FALLBACK_COLOURS, key)
    marker = MARKERS.get(key) or _pick(FALLBACK_MARKERS, key)
    if label != base:   # explicit options: same hue, dotted, own marker
        return Style(color, _pick(FALLBACK_MARKERS, label), ":", twin is not None)
    if twin is not None:
        return Style(color, marker, "--", True)
    if variant is not None:
        return Style(color, marker, "-.", False)
    return Style(color, marker, "-", False)


def family_panels(labels) -> list:
    """[(panel title, [labels])] grouped by family in `locklab list` order,
    labels sorted within a panel."""
    groups = {}
    for lk in labels:
        groups.setdefault(panel_family(lk), []).append(lk)
    order = {f: i for i, f in enumerate(FAMILY_ORDER)}
    return [(f, sorted(groups[f]))
            for f in sorted(groups, key=lambda f: (order.get(f, 99), f))]


__all__ = ["Style", "lock_style", "family", "family_panels", "base_name",
           "BASELINES", "BASELINE_GREYS", "FAMILIES", "FAMILY_ORDER"]
