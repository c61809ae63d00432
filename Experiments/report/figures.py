"""Figures: small multiples, one figure per metric and context, each as PNG,
SVG and PDF, named `figures/<metric>__<context slug>.<ext>`.

A figure is a grid of panels, one per lock family (or as the report options
say); each panel draws its locks in their fixed colours (styles.py) and the
baselines (pthread-mutex, mcs) in grey. The y axis is logarithmic when the
figure's values span more than two decades, the thread axis is base 2 when
every thread count is a power of two, and the oversubscribed thread counts
are shaded. USL curves are drawn only where fits.py found a valid fit.

Everything that could differ between two runs on the same CSV is pinned:
Agg backend, matplotlib's built-in default style, the bundled DejaVu Sans,
a fixed SVG hash salt, no dates in the metadata, fixed sizes and dpi,
sorted locks and colours keyed by the lock label.
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
from matplotlib.ticker import (EngFormatter, FixedLocator,  # noqa: E402
                               FuncFormatter, MaxNLocator, NullLocator)

from .fits import as_written, usl  # noqa: E402
from .styles import (BASELINE_GREYS, BASELINES, family_panels,  # noqa: E402
                     lock_style)

PANEL_SIZE = (3.6, 2.8)  # inches per panel
MAX_COLUMNS = 3
DPI = 110
FORMATS = ("png", "svg", "pdf")
SAVE_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None},
    "pdf": {"CreationDate": None, "ModDate": None},
}
LOG_SPAN = 100.0         # log y when max/min of the values exceeds this


@dataclass(frozen=True)
class Metric:
    stem: str          # file name stem
    column: str        # column in the runs frame
    title: str
    ylabel: str
    unit: str = ""     # EngFormatter unit for tick labels ("" = plain)
    ylim: tuple = None
    usl: bool = False
    relative: bool = False


METRICS = (
    Metric("throughput", "ops_per_sec", "Throughput", "Throughput (ops/s)",
           unit="ops/s", usl=True),
    Metric("relative", "ops_per_sec", "Throughput relative to the baseline",
           "Throughput / baseline's", relative=True),
    Metric("fairness", "jain_fairness", "Jain fairness",
           "Jain fairness index", ylim=(0.0, 1.05)),
    Metric("latency_p99", "lat_p99_ns", "p99 acquire latency",
           "p99 acquire latency (ns)", unit="ns"),
    Metric("handover", "same_node_handover_frac", "Same-node handover",
           "Same-node handover fraction", ylim=(-0.02, 1.02)),
    Metric("cpu_per_mop", "cpu_s_per_mop", "CPU cost",
           "CPU s (user+sys) per million ops"),
)
METRIC_STEMS = tuple(m.stem for m in METRICS)
# Figures across read ratios (readmostly.py), drawn only when a workload has
# at least two read ratios.
READ_STEMS = ("read_ratio", "read_update")
FIGURE_STEMS = METRIC_STEMS + READ_STEMS


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


def needs_log(values) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return len(v) >= 2 and float(v.max()) / float(v.min()) > LOG_SPAN


def base2_axis(threads) -> bool:
    """True when the thread counts double: all powers of two, >= 2."""
    ts = sorted(set(int(t) for t in threads))
    return len(ts) >= 2 and all(t >= 1 and (t & (t - 1)) == 0 for t in ts)


def _stats(values_by_threads):
    """{threads: array} -> (x, median, min, max) over finite values."""
    xs, med, lo, hi = [], [], [], []
    for t in sorted(values_by_threads):
        v = np.asarray(values_by_threads[t], dtype=float)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            continue
        xs.append(float(t))
        med.append(float(np.median(v)))
        lo.append(float(np.min(v)))
        hi.append(float(np.max(v)))
    return (np.array(xs), np.array(med), np.array(lo), np.array(hi))


def series_values(cdf, metric, baseline=None):
    """{lock: {threads: values}} for one context; for the relative figure
    each run divided by the baseline's median at the same thread count
    (None if the baseline is absent)."""
    out = {}
    base_med = None
    if metric.relative:
        if baseline is None or baseline not in set(cdf["lock"]):
            return None
        b = cdf[cdf["lock"] == baseline]
        b = b[np.isfinite(b[metric.column]) & (b[metric.column] > 0)]
        base_med = b.groupby("threads")[metric.column].median()
    for lk, g in cdf.groupby("lock", sort=True):
        if metric.relative and lk == baseline:
            continue
        vals = {}
        for t, gt in g.groupby("threads", sort=True):
            v = gt[metric.column].to_numpy(dtype=float)
            if metric.stem == "handover":
                # One node: every handover is same-node by definition.
                v = np.where(gt["nodes"].to_numpy(dtype=float) > 1, v,
                             np.nan)
            if base_med is not None:
                if t not in base_med.index:
                    continue
                v = v / float(base_med.loc[t])
            vals[int(t)] = v
        out[lk] = vals
    return out


def _grey_label(lk):
    return f"{lk} (baseline)"


def draw_series(ax, x, med, lo, hi, st, label):
    """One lock's series: its min-max band (a bar at a single point), then
    its median line in the lock's style; returns the line (for a legend)."""
    if len(x) > 1:
        ax.fill_between(x, lo, hi, color=st.color, alpha=0.13,
                        linewidth=0, zorder=2)
    elif hi[0] > lo[0]:
        ax.errorbar(x, med, yerr=[med - lo, hi - med], color=st.color,
                    linewidth=1, capsize=3, zorder=2)
    (line,) = ax.plot(
        x, med, color=st.color, linestyle=st.linestyle,
        marker=st.marker, markersize=5, linewidth=1.5,
        markerfacecolor="white" if st.hollow else st.color,
        markeredgecolor=st.color, label=label, zorder=3)
    return line


def _panel(ax, labels, greys, data, metric, fits, ci, log, fit_tmax,
           ceilings=()):
    """Draws one panel; returns True if it drew any value."""
    drew = False
    handles = []
    if metric.stem == "throughput" and ceilings:
        # The coherence probe's handover ceiling at 2 threads (coherence.py)
        # for this panel's locks, in their colours.
        from .coherence import draw_ceilings
        ceiling = draw_ceilings(ax, ceilings, ci,
                                {lk: (lock_style(lk).color,)
                                 for lk in labels}, 1.0)
        if ceiling is not None:
            handles.append(ceiling)
    for lk in greys:
        if lk in labels or lk not in data:
            continue
        x, med, _, _ = _stats(data[lk])
        if log:
            keep = med > 0
            x, med = x[keep], med[keep]
        if len(x) == 0:
            continue
        (line,) = ax.plot(x, med, color=BASELINE_GREYS.get(lk, "0.6"),
                          linewidth=1.2, marker=".", markersize=4,
                          label=_grey_label(lk), zorder=1)
        handles.append(line)
    fit_drawn = False
    for lk in labels:
        if lk not in data:
            continue
        st = lock_style(lk)
        x, med, lo, hi = _stats(data[lk])
        if log:
            keep = (med > 0)
            x, med, lo, hi = x[keep], med[keep], lo[keep], hi[keep]
            lo = np.where(lo > 0, lo, med)
        if len(x) == 0:
            continue
        drew = True
        handles.append(draw_series(ax, x, med, lo, hi, st, lk))
        r = fits.get((ci, lk)) if metric.usl else None
        if r is not None and all(math.isfinite(r[k]) for k in (
                "usl_lambda_ops_per_sec", "usl_sigma", "usl_kappa")):
            nn = np.linspace(1.0, float(fit_tmax), 100)
            ax.plot(nn, usl(nn, *(as_written(r[k]) for k in (
                        "usl_lambda_ops_per_sec", "usl_sigma", "usl_kappa"))),
                    color=st.color, linestyle=(0, (1, 1.5)), linewidth=0.9,
                    alpha=0.9, zorder=2)
            fit_drawn = True
    if fit_drawn:
        handles.append(Line2D([], [], color="0.2", linestyle=(0, (1, 1.5)),
                              linewidth=0.9, label="USL fit (CPUs only)"))
    if handles:
        ax.legend(handles=handles, loc="best", fontsize=6.5, frameon=True,
                  framealpha=0.85, handlelength=2.6, borderaxespad=0.3)
    return drew


def _format_axes(ax, metric, threads_all, over_start, log, base2, row_last,
                 col_first, ylabel):
    if base2:
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(threads_all))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(
            lambda v, _: f"{int(round(v))}"))
        lo, hi = threads_all[0] / 1.25, threads_all[-1] * 1.25
    else:
        lo, hi = threads_all[0] - 0.5, threads_all[-1] + 0.5
        if len(threads_all) <= 16:
            ax.set_xticks(threads_all)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(lo, hi)
    if over_start is not None:
        prev = [t for t in threads_all if t < over_start]
        if prev:
            start = (math.sqrt(prev[-1] * over_start) if base2
                     else (prev[-1] + over_start) / 2.0)
        else:
            start = lo
        ax.axvspan(start, hi, color="0.5", alpha=0.12, linewidth=0,
                   zorder=0)
    if log:
        ax.set_yscale("log")
    elif metric.ylim is not None:
        ax.set_ylim(*metric.ylim)
    elif metric.relative:
        pass
    else:
        ax.set_ylim(bottom=0)
    if metric.unit and not metric.relative:
        ax.yaxis.set_major_formatter(EngFormatter(unit="", sep=" "))
    if log:
        ax.yaxis.set_minor_locator(NullLocator())
    if metric.relative:
        ax.axhline(1.0, color="0.3", linewidth=0.9, linestyle="-", zorder=1)
    if row_last:
        ax.set_xlabel("Threads" + (" (base-2 axis)" if base2 else ""),
                      fontsize=8)
    if col_first:
        ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)


def draw_figure(metric, cdf, ctx, ci, panels, fits, baseline, title_extra,
                ceilings=()):
    """One figure for one metric and context, or (None, reason)."""
    threads_all = sorted(set(int(t) for t in cdf["threads"]))
    data = series_values(cdf, metric, baseline)
    if data is None:
        return None, (f"the baseline `{baseline}` has no runs in this "
                      f"configuration")
    allv = [v for d in data.values() for a in d.values() for v in a]
    if not np.any(np.isfinite(np.asarray(allv, dtype=float))):
        if metric.stem == "handover":
            return None, ("every run used one node (same-node handover is "
                          "1 by definition)")
        if metric.stem.startswith("latency"):
            return None, "no run sampled an acquisition"
        return None, "no values"
    log = metric.ylim is None and needs_log(allv)
    base2 = base2_axis(threads_all)
    over = cdf[cdf["oversubscribed"] == True]  # noqa: E712
    over_start = int(over["threads"].min()) if len(over) else None
    fit_tmax = max([t for t in threads_all
                    if over_start is None or t < over_start] or [1])
    greys = [b for b in BASELINES if b in data]
    panels = [(t, [lk for lk in labels if lk in data]) for t, labels in
              panels]
    panels = [(t, labels) for t, labels in panels if labels]
    ncols = min(MAX_COLUMNS, len(panels))
    nrows = int(math.ceil(len(panels) / ncols))
    fig = Figure(figsize=(PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows + 0.5),
                 dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True,
                        squeeze=False)
    ylabel = metric.ylabel
    if metric.relative:
        ylabel = f"Throughput / {baseline}'s"
    if log:
        ylabel += ", log scale"
    for k, (title, labels) in enumerate(panels):
        ax = axes[k // ncols][k % ncols]
        drew = _panel(ax, labels, [g for g in greys if g not in labels]
                      if len(panels) > 1 else [], data, metric, fits, ci,
                      log, fit_tmax, ceilings)
        ax.set_title(title, fontsize=9)
        if not drew:
            ax.text(0.5, 0.5, "no values", transform=ax.transAxes,
                    ha="center", va="center", color="0.4", fontsize=9)
        _format_axes(ax, metric, threads_all, over_start, log, base2,
                     row_last=(k + ncols >= len(panels)),
                     col_first=(k % ncols == 0), ylabel=ylabel)
    for k in range(len(panels), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    notes = []
    if over_start is not None:
        notes.append(f"shaded: more threads than CPUs (from {over_start})")
    if metric.relative:
        notes.append(f"{baseline} = 1 at every thread count")
    if metric.stem == "handover":
        notes.append("one-node runs not drawn")
    if len(panels) > 1 and greys:
        notes.append("grey: " + ", ".join(greys))
    notes.append("median of repeats, band: min-max")
    title = f"{metric.title} - {ctx.label()}"
    if title_extra:
        title += f" - {title_extra}"
    fig.suptitle(title + "\n" + "; ".join(notes), fontsize=9)
    return fig, ""


def _clean_old(fig_dir) -> None:
    """Remove figures an earlier run left (e.g. for other configurations,
    or under the old names without a slug)."""
    pat = re.compile(r"^(%s)(__[A-Za-z0-9._+=-]+)?\.(png|svg|pdf)$"
                     % "|".join(FIGURE_STEMS))
    for name in sorted(os.listdir(fig_dir)):
        if pat.match(name):
            os.remove(os.path.join(fig_dir, name))


def resolve_panels(labels, panels):
    """panels: 'family' | 'none' | [[lock, ...], ...] | {title: [lock]}."""
    labels = sorted(labels)
    if panels in (None, "family"):
        return family_panels(labels)
    if panels == "none":
        return [("all locks", labels)]
    groups = (list(panels.items()) if isinstance(panels, dict)
              else [(", ".join(p), p) for p in panels])
    out, used = [], set()
    for title, members in groups:
        m = [lk for lk in labels if lk in members
             or lk.split(":", 1)[0] in members]
        used.update(m)
        out.append((str(title), m))
    rest = [lk for lk in labels if lk not in used]
    if rest:
        out.append(("other", rest))
    return out


def make_figures(runs, fits, out_dir, options, ceilings=()) -> list:
    """Write the figures into out_dir/figures. Returns, per context,
    (context index, [(Metric, relative path without extension or None,
    reason)])."""
    configure_matplotlib()
    df = runs.df
    fig_dir = os.path.join(out_dir, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    _clean_old(fig_dir)
    machines = sorted(set(df["machine"]) - {""})
    machine_label = machines[0] if len(machines) == 1 else ""
    only = options.figures
    result = []
    for ci, ctx in enumerate(runs.contexts):
        cdf = df[df["context"] == ci]
        if cdf.empty:
            continue
        panels = resolve_panels(set(cdf["lock"]), options.panels)
        made = []
        for metric in METRICS:
            if only is not None and metric.stem not in only:
                continue
            fig, reason = draw_figure(metric, cdf, ctx, ci, panels, fits,
                                      options.baseline, machine_label,
                                      ceilings)
            if fig is None:
                made.append((metric, None, reason))
                continue
            rel = f"figures/{metric.stem}__{ctx.slug}"
            for ext in FORMATS:
                fig.savefig(os.path.join(out_dir, f"{rel}.{ext}"),
                            format=ext, dpi=DPI,
                            metadata=SAVE_METADATA[ext])
                # Laid out once (the PNG); the SVG and PDF keep it.
                fig.set_layout_engine("none")
            made.append((metric, rel, ""))
        result.append((ci, made))
    return result
