"""Figures: one per metric and workload, each as PNG, SVG and PDF.

Everything that could differ between two runs on the same CSV is pinned:
Agg backend, matplotlib's built-in default style, the bundled DejaVu Sans,
a fixed SVG hash salt, no dates in the metadata, a fixed figure size and
dpi, and locks drawn in sorted order with colours fixed by that order.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg", force=True)

import numpy as np  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .fits import usl  # noqa: E402
from .load import WORKLOAD_COLUMNS, locks as sorted_locks, workloads  # noqa

FIGSIZE = (8.0, 4.8)     # inches
DPI = 120                # PNG: 960 x 576 pixels
FORMATS = ("png", "svg", "pdf")
SAVE_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None},
    "pdf": {"CreationDate": None, "ModDate": None},
}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


@dataclass(frozen=True)
class Metric:
    stem: str          # file name stem
    column: str        # column in the runs frame
    title: str
    ylabel: str
    scale: float = 1.0
    log: bool = False
    ylim: tuple = None
    usl: bool = False


METRICS = (
    Metric("throughput", "ops_per_sec", "Throughput", "Throughput (M ops/s)",
           scale=1e-6, usl=True),
    Metric("fairness", "jain_fairness", "Jain fairness",
           "Jain fairness index", ylim=(0.0, 1.05)),
    Metric("latency_p99", "lat_p99_ns", "p99 acquire latency",
           "p99 acquire latency (ns, log)", log=True),
    Metric("handover", "same_node_handover_frac", "Same-node handover",
           "Same-node handover fraction", ylim=(-0.02, 1.02)),
    Metric("cpu_per_mop", "cpu_s_per_mop", "CPU cost",
           "CPU s (user+sys) per million ops"),
)


def configure_matplotlib() -> None:
    matplotlib.rcdefaults()
    matplotlib.rcParams.update({
        "svg.hashsalt": "locklab-report",
        "svg.fonttype": "path",
        "pdf.fonttype": 42,
        "pdf.compression": 6,
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans"],
        "mathtext.fontset": "dejavusans",
        "font.size": 10,
        "figure.figsize": FIGSIZE,
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "savefig.bbox": None,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.unicode_minus": False,
        "text.usetex": False,
        "path.simplify": True,
    })
    _pin_bundled_dejavu()


def _pin_bundled_dejavu() -> None:
    """Use matplotlib's own DejaVu Sans, never a system copy of another
    version, so the glyph outlines are the same on every machine."""
    bundled = os.path.realpath(
        os.path.join(matplotlib.get_data_path(), "fonts", "ttf"))
    fm = font_manager.fontManager
    keep = [f for f in fm.ttflist
            if not (f.name == "DejaVu Sans" and not os.path.realpath(
                f.fname).startswith(bundled + os.sep))]
    if len(keep) != len(fm.ttflist):
        fm.ttflist = keep
        cache_clear = getattr(font_manager.findfont, "cache_clear", None)
        for fn in (cache_clear,
                   getattr(getattr(fm, "_findfont_cached", None),
                           "cache_clear", None)):
            if fn is not None:
                fn()


def lock_styles(all_locks) -> dict:
    """Colour and marker per lock, fixed by the sorted order of all locks."""
    from matplotlib import colormaps
    cmap = colormaps["tab10" if len(all_locks) <= 10 else "tab20"]
    n = cmap.N
    return {lk: (cmap(i % n), MARKERS[i % len(MARKERS)])
            for i, lk in enumerate(all_locks)}


def workload_label(w) -> str:
    # The microbenchmark reads as before workloads existed; another workload leads with its
    # name and leaves out the micro-only parameters it does not have.
    named = dict(zip(WORKLOAD_COLUMNS, w))
    name = named.get("workload", "micro")
    parts = [f"{c}={v}" for c, v in named.items() if c != "workload" and v != ""]
    return ", ".join(parts if name == "micro" else [name] + parts)


def workload_suffix(w) -> str:
    cs_lines, cs_ns, ncs_ns, placement = w[:4]
    name = w[4] if len(w) > 4 else "micro"
    s = f"cl{cs_lines}-cs{cs_ns}-ncs{ncs_ns}-{placement}"
    if name != "micro":
        s = f"{name}-ncs{ncs_ns}-{placement}"
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", s)


def figure_stems(wls) -> dict:
    """Workload -> file-name suffix ('' if there is only one workload)."""
    if len(wls) <= 1:
        return {w: "" for w in wls}
    out, seen = {}, set()
    for w in wls:
        s = "__" + workload_suffix(w)
        base, k = s, 2
        while s in seen:
            s = f"{base}_{k}"
            k += 1
        seen.add(s)
        out[w] = s
    return out


def _summarise(g, column, scale, log):
    v = g[["threads", column]].copy()
    v[column] = v[column] * scale
    v = v[np.isfinite(v[column])]
    if log:
        v = v[v[column] > 0]
    if v.empty:
        return None
    s = v.groupby("threads")[column].agg(["median", "min", "max"])
    return s.sort_index()


def _draw(fig, metric, wdf, w, styles, fit_rows, machine_label,
          ceilings=()):
    ax = fig.add_subplot(1, 1, 1)
    handles = []
    any_data = False
    threads_all = sorted(set(int(t) for t in wdf["threads"]))
    tmax = max(threads_all) if threads_all else 1
    for lk in sorted(set(wdf["lock"])):
        g = wdf[wdf["lock"] == lk]
        s = _summarise(g, metric.column, metric.scale, metric.log)
        if s is None:
            continue
        any_data = True
        color, marker = styles[lk]
        x = s.index.to_numpy(dtype=float)
        if len(x) > 1:
            ax.fill_between(x, s["min"].to_numpy(), s["max"].to_numpy(),
                            color=color, alpha=0.15, linewidth=0)
        else:
            ax.errorbar(x, s["median"].to_numpy(),
                        yerr=[s["median"] - s["min"], s["max"] - s["median"]],
                        color=color, linewidth=1, capsize=3)
        (line,) = ax.plot(x, s["median"].to_numpy(), color=color,
                          marker=marker, markersize=5, linewidth=1.5,
                          label=lk)
        handles.append(line)
        if metric.usl:
            r = fit_rows.get((lk,) + tuple(w))
            if r is not None and all(
                    math.isfinite(r[k]) for k in
                    ("usl_lambda", "usl_sigma", "usl_kappa")):
                nn = np.linspace(1.0, float(tmax), 200)
                ax.plot(nn, usl(nn, r["usl_lambda"], r["usl_sigma"],
                                r["usl_kappa"]) * metric.scale,
                        color=color, linestyle="--", linewidth=1.0,
                        alpha=0.9)

    over = wdf[wdf["oversubscribed"] == True]  # noqa: E712 (None-aware)
    if len(over) and threads_all:
        start = int(over["threads"].min())
        ax.axvspan(start - 0.5, tmax + 0.5, color="0.5", alpha=0.10,
                   linewidth=0)
        handles.append(Patch(color="0.5", alpha=0.25,
                             label="oversubscribed"))
    if metric.usl and handles:
        handles.append(Line2D([], [], color="0.2", linestyle="--",
                              linewidth=1.0, label="USL fit"))
    if metric.stem == "throughput" and ceilings:
        from .coherence import draw_ceilings
        ceiling = draw_ceilings(ax, ceilings, w, styles, metric.scale)
        if ceiling is not None:
            handles.append(ceiling)

    ax.set_xlabel("Threads")
    ax.set_ylabel(metric.ylabel)
    title = f"{metric.title} - {workload_label(w)}"
    if machine_label:
        title += f"\n{machine_label}"
    ax.set_title(title, fontsize=10)
    if threads_all:
        ax.set_xlim(min(threads_all) - 0.5, tmax + 0.5)
        if len(threads_all) <= 16:
            ax.set_xticks(threads_all)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not any_data:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center",
                va="center", color="0.4", fontsize=14)
        ax.set_ylim(0, 1)
    elif metric.log:
        ax.set_yscale("log")
    elif metric.ylim is not None:
        ax.set_ylim(*metric.ylim)
    else:
        ax.set_ylim(bottom=0)
    if handles:
        fig.legend(handles=handles, loc="outside right upper", fontsize=8,
                   frameon=False)


def _clean_old(fig_dir) -> None:
    """Remove figures an earlier run left (e.g. for other workloads)."""
    stems = tuple(m.stem for m in METRICS)
    pat = re.compile(r"^(%s)(__[A-Za-z0-9._+-]+)?\.(png|svg|pdf)$"
                     % "|".join(stems))
    for name in sorted(os.listdir(fig_dir)):
        if pat.match(name):
            os.remove(os.path.join(fig_dir, name))


def make_figures(df, fit_rows, out_dir, only=None, ceilings=()) -> list:
    """Write the figures (all, or those whose stem is in `only`) into
    out_dir/figures. Returns
    [(workload, [(Metric, relative path without extension), ...]), ...]."""
    configure_matplotlib()
    fig_dir = os.path.join(out_dir, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    _clean_old(fig_dir)
    styles = lock_styles(sorted_locks(df))
    wls = workloads(df)
    suffixes = figure_stems(wls)
    machines = sorted(set(df["machine"]) - {""})
    machine_label = machines[0] if len(machines) == 1 else ""
    result = []
    for w in wls:
        mask = np.ones(len(df), dtype=bool)
        for c, v in zip(WORKLOAD_COLUMNS, w):
            mask &= (df[c] == v).to_numpy()
        wdf = df[mask]
        made = []
        for metric in METRICS:
            if only is not None and metric.stem not in only:
                continue
            fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
            _draw(fig, metric, wdf, w, styles, fit_rows, machine_label,
                  ceilings)
            rel = f"figures/{metric.stem}{suffixes[w]}"
            for ext in FORMATS:
                fig.savefig(os.path.join(out_dir, f"{rel}.{ext}"),
                            format=ext, dpi=DPI,
                            metadata=SAVE_METADATA[ext])
            made.append((metric, rel))
        result.append((w, made))
    return result
