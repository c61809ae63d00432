"""Read-mostly workloads (reader-writer locks): figures and tables across
read ratios.

A workload with reads says its read ratio (percent of operations that are
reads, 0..100) in its `read-ratio=N` option; every ratio is a context of its
own (load.py), so the per-context figures never pool them. Here the runs
that differ only in the read ratio are brought together: a *group* is every
context column but the workload and its options, a *panel* a workload with
its `read-ratio=` option removed (`snapshot`, `hashtable:keys=4096`).

- `read_ratio`: throughput (ops/s) against read ratio, one line per lock,
  one panel per workload, at one thread count;
- `read_update`: read throughput (`read_ops_per_sec`, ratio 0 left out) and
  update throughput (`update_ops_per_sec`, ratio 100 left out), two panels
  per workload, at the same thread count.

The thread count is `--read-threads N`, else the largest one that is not
oversubscribed, else the largest. Figures and section are made only where
runs.csv has the read/update columns and some workload has at least two
read ratios; older folders get neither, so their reports are unchanged.
"""

from __future__ import annotations

import math
import os

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, NullLocator

from .figures import (DPI, FORMATS, MAX_COLUMNS, PANEL_SIZE, READ_STEMS,
                      SAVE_METADATA, _stats, draw_series, needs_log)
from .load import (CONTEXT_COLUMNS, Context, ReportError, _slug, _text,
                   without_read_ratio)
from .styles import lock_style
from .tables import si

WORKLOAD_PART = ("workload", "workload_options")
MIN_WIDTH = 7.2       # inches: room for the three title lines
TITLE_HEIGHT = 0.8    # inches above the panels
TITLES = {"read_ratio": "Throughput against read ratio",
          "read_update": "Read and update throughput against read ratio"}


# --- grouping -------------------------------------------------------------

def read_rows(df):
    """The runs of workloads with a read ratio, with `rm_workload` (the
    workload label without its read ratio) and `rm_options` (its options
    without it)."""
    rdf = df[np.isfinite(df["read_ratio"])].copy()
    if rdf.empty:
        return rdf
    rdf["rm_workload"] = [without_read_ratio(w, ":")
                          for w in _text(rdf, "workload")]
    opts = (_text(rdf, "workload_options") if "workload_options"
            in rdf.columns else [""] * len(rdf))
    rdf["rm_options"] = [without_read_ratio(o, ";") for o in opts]
    return rdf


def has_ratios(rdf) -> bool:
    """True when some workload has at least two distinct read ratios."""
    if rdf.empty:
        return False
    n = rdf.groupby(["rm_workload", "rm_options"])["read_ratio"].nunique()
    return bool((n >= 2).any())


def groups(runs, rdf) -> list:
    """[(Context without the workload, its rows)] in a stable order: the
    runs that differ only in workload and read ratio. The context's slug is
    the figure-name part (the configuration's slug without the workload)."""
    df = runs.df
    cols = [c for c in CONTEXT_COLUMNS if c in df.columns
            and c not in WORKLOAD_PART]
    varying = {c for c in cols if len(set(_text(df, c).astype(str))) > 1}
    keys = {}
    for ci in sorted(set(rdf["context"])):
        ctx = runs.contexts[ci]
        key = tuple((c, ctx.get(c)) for c in cols)
        keys.setdefault(key, []).append(ci)
    out = []
    for key, cis in keys.items():
        gdf = rdf[rdf["context"].isin(cis)]
        out.append((Context(key=key, slug=_slug(dict(key), varying)), gdf))
    return out


def panels(gdf) -> list:
    """[(title, rows)] per workload without its read ratio, sorted; the
    options other than the read ratio are in the title only where two
    panels would otherwise share it."""
    keys = sorted(set(zip(gdf["rm_workload"], gdf["rm_options"])))
    names = [w for w, _ in keys]
    out = []
    for w, o in keys:
        title = w if names.count(w) == 1 else f"{w} ({o})"
        out.append((title, gdf[(gdf["rm_workload"] == w)
                               & (gdf["rm_options"] == o)]))
    return out


def choose_threads(gdf, requested=None):
    """(thread count, why): `requested` (--read-threads) when given, else
    the largest not oversubscribed, else the largest."""
    if requested is not None:
        return int(requested), "--read-threads"
    within = gdf[gdf["oversubscribed"] == False]  # noqa: E712 (None-aware)
    if len(within):
        return int(within["threads"].max()), "the most not oversubscribed"
    return int(gdf["threads"].max()), "the most (all oversubscribed)"


def check_threads(runs, requested) -> None:
    """An explicit --read-threads must be a thread count of the read-mostly
    runs (when the folder has any)."""
    if requested is None:
        return
    rdf = read_rows(runs.df)
    have = sorted(set(int(t) for t in rdf["threads"]))
    if have and int(requested) not in have:
        raise ReportError(f"--read-threads: no read-mostly run at "
                          f"{requested} threads (they have "
                          f"{', '.join(str(t) for t in have)})")


# --- figures --------------------------------------------------------------

def _ratio_values(rows, column, omit=()):
    """{lock: {read ratio: values of `column`}}, ratios in `omit` left
    out."""
    out = {}
    for lk, g in rows.groupby("lock", sort=True):
        vals = {}
        for r, gr in g.groupby("read_ratio", sort=True):
            if float(r) not in omit:
                vals[float(r)] = gr[column].to_numpy(dtype=float)
        if vals:
            out[lk] = vals
    return out


def _draw_locks(ax, data, positions, log) -> bool:
    """Median line per lock at the ratios' positions, band min-max (as the
    throughput figure draws them). Returns True if it drew any value."""
    drew = False
    for lk in sorted(data):
        st = lock_style(lk)
        r, med, lo, hi = _stats(data[lk])
        if log:
            keep = med > 0
            r, med, lo, hi = r[keep], med[keep], lo[keep], hi[keep]
            lo = np.where(lo > 0, lo, med)
        if len(r) == 0:
            continue
        drew = True
        x = np.array([positions[float(v)] for v in r], dtype=float)
        draw_series(ax, x, med, lo, hi, st, lk)
    if drew:
        ax.legend(loc="best", fontsize=6.5, frameon=True, framealpha=0.85,
                  handlelength=2.6, borderaxespad=0.3)
    return drew


def _format_ratio_axes(ax, ratios, log, ylabel, row_last, col_first):
    """Evenly spaced read-ratio ticks labelled in percent; y from 0 (or
    log, said in the label) with ops/s prefixes."""
    ax.set_xticks(range(len(ratios)))
    ax.set_xticklabels([f"{r:g}%" for r in ratios])
    ax.set_xlim(-0.5, len(ratios) - 0.5)
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())
        ylabel += ", log scale"
    else:
        ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(EngFormatter(unit="", sep=" "))
    if row_last:
        ax.set_xlabel("Read ratio (% of operations that are reads)",
                      fontsize=8)
    if col_first or log:
        ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)


def _all_values(data):
    return [v for d in data.values() for a in d.values() for v in a]


def _suptitle(fig, stem, ctx, threads, why, over, title_extra):
    title = f"{TITLES[stem]} at {threads} threads"
    if title_extra:
        title += f" - {title_extra}"
    notes = [f"{threads} threads: {why}"
             + (" (oversubscribed)" if over else ""),
             "median of repeats, band: min-max"]
    lines = [title, ctx.label(), "; ".join(notes)]
    if stem == "read_update":
        lines.append("reads at 0% and updates at 100% are 0 by "
                     "definition: not drawn")
    fig.suptitle("\n".join(lines), fontsize=9)


def _empty(ax):
    ax.text(0.5, 0.5, "no values", transform=ax.transAxes, ha="center",
            va="center", color="0.4", fontsize=9)


def draw_read_ratio(pans, ratios, ctx, threads, why, over, title_extra=""):
    """Throughput (ops/s) against read ratio, one panel per workload."""
    data = [(t, _ratio_values(p, "ops_per_sec")) for t, p in pans]
    log = needs_log([v for _, d in data for v in _all_values(d)])
    positions = {r: i for i, r in enumerate(ratios)}
    ncols = min(MAX_COLUMNS, len(data))
    nrows = int(math.ceil(len(data) / ncols))
    fig = Figure(figsize=(max(PANEL_SIZE[0] * ncols, MIN_WIDTH),
                          PANEL_SIZE[1] * nrows + TITLE_HEIGHT),
                 dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, sharex=True, sharey=True,
                        squeeze=False)
    for k, (title, d) in enumerate(data):
        ax = axes[k // ncols][k % ncols]
        if not _draw_locks(ax, d, positions, log):
            _empty(ax)
        ax.set_title(title, fontsize=9)
    # Limits after every panel is drawn: the y axis is shared.
    for k in range(len(data)):
        _format_ratio_axes(axes[k // ncols][k % ncols], ratios, log,
                           "Throughput (ops/s)",
                           row_last=(k + ncols >= len(data)),
                           col_first=(k % ncols == 0))
    for k in range(len(data), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    _suptitle(fig, "read_ratio", ctx, threads, why, over, title_extra)
    return fig


SPLIT = (("reads", "read_ops_per_sec", (0.0,), "Read throughput (ops/s)"),
         ("updates", "update_ops_per_sec", (100.0,),
          "Update throughput (ops/s)"))


def draw_read_update(pans, ratios, ctx, threads, why, over, title_extra=""):
    """Read and update throughput (ops/s) against read ratio: per workload a
    row of two panels, each with its own y axis (log where its values span
    more than two decades)."""
    positions = {r: i for i, r in enumerate(ratios)}
    nrows = len(pans)
    fig = Figure(figsize=(max(PANEL_SIZE[0] * 2, MIN_WIDTH),
                          PANEL_SIZE[1] * nrows + TITLE_HEIGHT + 0.15),
                 dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, 2, sharex=True, sharey=False, squeeze=False)
    for k, (title, rows) in enumerate(pans):
        for j, (what, column, omit, ylabel) in enumerate(SPLIT):
            ax = axes[k][j]
            d = _ratio_values(rows, column, omit)
            log = needs_log(_all_values(d))
            if not _draw_locks(ax, d, positions, log):
                _empty(ax)
            ax.set_title(f"{title}: {what}", fontsize=9)
            _format_ratio_axes(ax, ratios, log, ylabel,
                               row_last=(k == nrows - 1), col_first=True)
    _suptitle(fig, "read_update", ctx, threads, why, over, title_extra)
    return fig


def _save(fig, out_dir, rel):
    for ext in FORMATS:
        fig.savefig(os.path.join(out_dir, f"{rel}.{ext}"), format=ext,
                    dpi=DPI, metadata=SAVE_METADATA[ext])
        # Laid out once (the PNG); the SVG and PDF keep it.
        fig.set_layout_engine("none")


DRAW = {"read_ratio": draw_read_ratio, "read_update": draw_read_update}


def make_read_figures(runs, out_dir, options) -> list:
    """Write the read-mostly figures into out_dir/figures (after
    figures.make_figures, which cleaned the folder). Returns, per group,
    (Context, rows, threads, why, [(stem, title, relative path or None,
    reason)]); empty (no figure, no section) unless runs.csv has the
    read/update split and some workload has two read ratios or more: an
    older CSV's hashtable runs carry a read ratio too, and their reports
    stay as they were."""
    if "read_ops_per_sec" not in runs.df.columns:
        return []
    rdf = read_rows(runs.df)
    if not has_ratios(rdf):
        return []
    machines = sorted(set(runs.df["machine"]) - {""})
    title_extra = machines[0] if len(machines) == 1 else ""
    only = options.figures
    result = []
    for ctx, gdf in groups(runs, rdf):
        threads, why = choose_threads(gdf, options.read_threads)
        at = gdf[gdf["threads"] == threads]
        over = bool((at["oversubscribed"] == True).any())  # noqa: E712
        made = []
        for stem in READ_STEMS:
            if only is not None and stem not in only:
                continue
            if at.empty:
                made.append((stem, TITLES[stem], None,
                             f"no read-mostly run at {threads} threads"))
                continue
            pans = [(t, p) for t, p in panels(at)]
            ratios = sorted(set(float(r) for r in at["read_ratio"]))
            fig = DRAW[stem](pans, ratios, ctx, threads, why, over,
                             title_extra)
            rel = f"figures/{stem}__{ctx.slug}"
            _save(fig, out_dir, rel)
            made.append((stem, TITLES[stem], rel, ""))
        result.append((ctx, gdf, threads, why, made))
    return result


# --- tables ---------------------------------------------------------------

STAT_COLUMNS = ("ops_per_sec", "read_ops_per_sec", "update_ops_per_sec",
                "min_thread_updates")


def ratio_stats(gdf):
    """Medians over repeats of STAT_COLUMNS (those the CSV has) per
    (workload without read ratio, lock, read ratio, threads), with
    `oversubscribed` and `repeats`; missing values left out."""
    cols = [c for c in STAT_COLUMNS if c in gdf.columns]
    keys = ["rm_workload", "lock", "read_ratio", "threads"]
    g = gdf.groupby(keys, sort=True)
    st = g[cols].median()
    st["oversubscribed"] = g["oversubscribed"].agg(
        lambda s: any(o is True for o in s))
    st["repeats"] = g.size()
    return st


def _ops(v) -> str:
    """ops/s with k/M ('0' for none at all: reads at ratio 0)."""
    return "0" if v == 0 else si(v)


def _count(v) -> str:
    """An operation count: '37048', '12.5'; '' when missing."""
    if v is None or not math.isfinite(v):
        return ""
    return f"{v:.0f}" if v == int(v) else f"{v:.1f}"


def ratio_table(gdf) -> tuple:
    """(header, rows): medians per workload, lock, read ratio and thread
    count (ops/s with k/M; * = oversubscribed)."""
    st = ratio_stats(gdf)
    rows = []
    for (w, lk, r, t), s in st.iterrows():
        rows.append([w, lk, f"{r:g}", f"{t}*" if s["oversubscribed"]
                     else str(t), _ops(s["ops_per_sec"]),
                     _ops(s.get("read_ops_per_sec", math.nan)),
                     _ops(s.get("update_ops_per_sec", math.nan)),
                     _count(s.get("min_thread_updates", math.nan))])
    header = ["workload", "lock", "read %", "threads", "ops/s",
              "read ops/s", "update ops/s", "min thread updates"]
    return header, rows


def read_scaling(gdf, threads) -> list:
    """Per workload and lock at read ratio 100: (workload, lock, median
    ops/s at 1 thread, at `threads`, their ratio); NaN where one is
    missing."""
    st = ratio_stats(gdf)["ops_per_sec"]
    out = []
    for (w, lk, r, t), _ in st.items():
        if r != 100.0 or t != 1:
            continue
        one = float(st.loc[(w, lk, r, 1)])
        key = (w, lk, r, threads)
        at = float(st.loc[key]) if key in st.index else math.nan
        out.append((w, lk, one, at, at / one if one > 0 else math.nan))
    return out


def blocks(read_index) -> list:
    """The report's read-mostly sections, one per group."""
    out = []
    for ctx, gdf, threads, why, made in read_index:
        out.append(("h", 2, f"Read-mostly workloads: {ctx.label()}"))
        out.append(("p", f"Runs whose workload has a read ratio "
                         f"(`read-ratio=N`, percent of operations that "
                         f"are reads), brought together across ratios. "
                         f"Figures at {threads} threads ({why}): "
                         f"`figures/<figure>__{ctx.slug}"
                         f".{{png,svg,pdf}}`."))
        for stem, title, rel, reason in made:
            if rel is None:
                out.append(("p", f"*{title}: not drawn: {reason}.*"))
            else:
                out.append(("figure", title, rel))
        scaling = read_scaling(gdf, threads)
        out.append(("h", 3, f"Read scaling: read ratio 100%, {threads} "
                            f"threads against 1"))
        if scaling:
            rows = [[w, lk, si(one), si(at),
                     "" if not math.isfinite(x) else f"{x:.2f}x"]
                    for w, lk, one, at, x in scaling]
            out.append(("table", ["workload", "lock", "ops/s at 1 thread",
                                  f"ops/s at {threads} threads",
                                  f"{threads} / 1"], rows, (0, 1)))
        else:
            out.append(("p", "No lock ran at read ratio 100% with 1 "
                             "thread."))
        header, rows = ratio_table(gdf)
        out += [("h", 3, "Median throughput by read ratio (ops/s; "
                         "k = 10^3, M = 10^6; * = oversubscribed; min "
                         "thread updates: the fewest updates an updating "
                         "thread made)"),
                ("table", header, rows, (0, 1))]
    return out


__all__ = ["make_read_figures", "blocks", "ratio_stats", "ratio_table",
           "read_scaling", "choose_threads", "check_threads", "read_rows",
           "has_ratios", "groups", "panels"]
