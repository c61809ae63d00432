"""The coherence probe in the report: bar charts, heat map, handover ceiling.

Inputs (written by `locklab coherence --out DIR`):
  coherence.csv       one row per (state, op, cpu_a, cpu_b): median/min/p99
                      latency in ns and cycle-counter ticks, distance class;
  handover_lines.csv  the lock's own lines per handover, per modelled lock.
A results folder uses DIR/coherence.csv, else the sibling
DIR/../coherence/coherence.csv (results/<machine>/coherence), else the file
given with --coherence.

The handover ceiling at two threads (Sources/LockLab/Probe/
HandoverCeiling.swift holds the model and its reasons):
  ceiling = 1 / (lines x t_store_M + cs_ns),
  lines = lock_lines + max(harness_lines, cs_lines): the microbenchmark's
  cs_lines K are K lines in all, the harness's record (counter, last
  holder) the first of them,
where t_store_M is the median store-to-Modified latency between the run's
two CPUs (either orientation; else the median over their distance class;
else, when the file has one class only, that class). Only the
microbenchmark's runs have a ceiling (workload `micro`, or none recorded):
one row per series (lock and load.CONTEXT_COLUMNS), never pooling two
workloads or configurations; a data-structure workload gets none.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

STATES = ("M", "E", "S", "I")
OPS = ("load", "store", "cas", "fetch-add", "exchange")
DISTANCES = ("smt", "same-l3", "same-node", "virtual", "other-node",
             "other-package")
STATE_NAMES = {"M": "Modified", "E": "Exclusive", "S": "Shared",
               "I": "Invalid"}
CSV_NAME = "coherence.csv"
LINES_NAME = "handover_lines.csv"
REQUIRED = ("state", "op", "cpu_a", "cpu_b", "distance", "median_ns")


class CoherenceError(Exception):
    """A coherence file that cannot be used (one line)."""


def find(directory, explicit=None):
    """Path of the coherence.csv for results folder `directory`, or None."""
    if explicit:
        if not os.path.isfile(explicit):
            raise CoherenceError(f"coherence file not found: {explicit}")
        return explicit
    here = os.path.join(directory, CSV_NAME)
    sibling = os.path.join(os.path.dirname(os.path.abspath(directory)),
                           "coherence", CSV_NAME)
    for p in (here, sibling):
        if os.path.isfile(p):
            return p
    return None


def load(path):
    """(coherence frame, handover-lines frame or None) from coherence.csv."""
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError,
            UnicodeDecodeError) as exc:
        raise CoherenceError(f"cannot parse {path}: {exc}".splitlines()[0])
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise CoherenceError(f"{path} lacks column(s): {', '.join(missing)}")
    for c in ("cpu_a", "cpu_b"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    for c in ("reps", "min_ns", "median_ns", "p99_ns"):
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    df = df[np.isfinite(df["median_ns"]) & df["cpu_a"].notna()
            & df["cpu_b"].notna()].copy()
    if df.empty:
        raise CoherenceError(f"{path} has no usable rows")
    df["cpu_a"] = df["cpu_a"].astype(int)
    df["cpu_b"] = df["cpu_b"].astype(int)
    lines = None
    lines_path = os.path.join(os.path.dirname(path), LINES_NAME)
    if os.path.isfile(lines_path):
        lines = pd.read_csv(lines_path, dtype={"lock": str})
    df = df.sort_values(["distance", "state", "op", "cpu_a", "cpu_b"],
                        kind="mergesort").reset_index(drop=True)
    return df, lines


def distances(cdf):
    present = set(cdf["distance"])
    return [d for d in DISTANCES if d in present] + sorted(
        present - set(DISTANCES))


def class_medians(cdf):
    """{distance: {(state, op): median over that class's pairs}}."""
    out = {}
    for d in distances(cdf):
        g = cdf[cdf["distance"] == d]
        out[d] = {(s, o): float(v["median_ns"].median())
                  for (s, o), v in g.groupby(["state", "op"])}
    return out


# --- the handover ceiling ------------------------------------------------

def transfer_ns(cdf, cpus=None):
    """(median store-to-M ns, where from) for a pair of CPUs, or None."""
    st = cdf[(cdf["state"] == "M") & (cdf["op"] == "store")]
    if st.empty:
        return None
    if cpus is not None:
        a, b = cpus
        pair = st[((st["cpu_a"] == a) & (st["cpu_b"] == b))
                  | ((st["cpu_a"] == b) & (st["cpu_b"] == a))]
        if len(pair):
            return (float(pair["median_ns"].median()),
                    f"cpus {a},{b} ({pair['distance'].iloc[0]})")
    if st["distance"].nunique() == 1:
        return (float(st["median_ns"].median()),
                f"{st['distance'].iloc[0]} median")
    return None


def lines_per_handover(lines, lock, cs_lines):
    if lines is None:
        return None
    hit = lines[lines["lock"] == lock]
    if hit.empty:
        return None
    r = hit.iloc[0]
    return int(r["lock_lines"]) + max(int(r["harness_lines"]), int(cs_lines))


def ceiling_ops(lines_n, t_ns, cs_ns):
    return 1e9 / (lines_n * t_ns + float(cs_ns))


def run_pairs(directory):
    """{run_id: (cpu, cpu)} of the two-thread runs, from threads.csv."""
    path = os.path.join(directory, "threads.csv")
    if not os.path.isfile(path):
        return {}
    try:
        t = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError):
        return {}
    if not {"run_id", "cpu", "threads"} <= set(t.columns):
        return {}
    out = {}
    for rid, g in t[t["threads"] == "2"].groupby("run_id"):
        cpus = sorted(int(c) for c in g["cpu"] if c.lstrip("-").isdigit())
        if len(cpus) == 2:
            out[rid] = tuple(cpus)
    return out


def is_micro(workload):
    """True for the lock microbenchmark: workload `micro` (a label may carry
    options after a colon), or no workload recorded (older CSVs: no column,
    or an empty cell)."""
    return str(workload or "").split(":", 1)[0].strip() in ("", "micro")


def unmodelled_workloads(runs_df):
    """The workloads other than micro with two-thread runs, sorted."""
    if runs_df is None or "workload" not in runs_df.columns:
        return []
    two = runs_df[runs_df["threads"] == 2]
    return sorted({w for w in two["workload"] if not is_micro(w)})


def ceilings(runs_df, directory, cdf, lines):
    """Ceiling rows for every series (lock in a context, load.Context) of
    the microbenchmark with two-thread runs: dicts with lock, context (the
    runs' `context` index), workload key (load.WORKLOAD_COLUMNS), lines,
    transfer, ceiling, medians and fractions. Runs of two contexts (another
    workload, ncs_random, duration, ...) are never pooled; data-structure
    workloads get no row (the model is one chain of line transfers per
    handover over the microbenchmark's cs_lines lines). Empty when nothing
    can be computed."""
    if cdf is None or runs_df is None:
        return []
    from .load import WORKLOAD_COLUMNS
    pairs = run_pairs(directory)
    two = runs_df[runs_df["threads"] == 2]
    if "workload" in two.columns:
        two = two[np.array([is_micro(w) for w in two["workload"]],
                           dtype=bool)]
    if two.empty:
        return []
    if "context" not in two.columns:    # a frame not from load_runs
        two = two.assign(context=0)
    groups = []
    for (ctx, lock), g in two.groupby(["context", "lock"], sort=True):
        wl = tuple(g[c].iloc[0] for c in WORKLOAD_COLUMNS)
        groups.append(((lock, wl, ctx), g))
    # Lock first, then its workload: one lock's rows together.
    groups.sort(key=lambda kg: (kg[0][0], kg[0][1], kg[0][2]))
    rows = []
    for (lock, wl, ctx), g in groups:
        name = (g["lock_name"].iloc[0] if "lock_name" in g.columns
                and isinstance(g["lock_name"].iloc[0], str)
                and g["lock_name"].iloc[0] else lock.split(":")[0])
        cs_lines = int(float(wl[0])) if str(wl[0]) else 0
        cs_ns = float(wl[1]) if str(wl[1]) else 0.0
        n = lines_per_handover(lines, name, cs_lines)
        if n is None:
            continue
        cpu_pairs = [pairs[r] for r in g["run_id"] if r in pairs]
        cpus = cpu_pairs[0] if cpu_pairs else None
        t = transfer_ns(cdf, cpus)
        if t is None:
            continue
        c = ceiling_ops(n, t[0], cs_ns)
        ops = float(g["ops_per_sec"].median())
        hand = (float(g["handovers_per_sec"].median())
                if "handovers_per_sec" in g.columns else float("nan"))
        rows.append({"lock": lock, "context": ctx, "workload": wl,
                     "lines": n, "transfer_ns": t[0], "source": t[1],
                     "ceiling_ops_per_sec": c, "ops_per_sec": ops,
                     "fraction": ops / c,
                     "handover_fraction": hand / c})
    return rows


def draw_ceilings(ax, rows, context, styles, scale):
    """Dashed horizontal segments at two threads, one per lock (its
    colour), on a throughput axis of series context `context` (the runs'
    `context` index): only that context's rows. Returns a legend handle or
    None."""
    from matplotlib.lines import Line2D
    drawn = False
    for r in rows:
        if r["context"] != context or r["lock"] not in styles:
            continue
        y = r["ceiling_ops_per_sec"] * scale
        ax.hlines(y, 1.55, 2.45, colors=[styles[r["lock"]][0]],
                  linestyles="dashed", linewidth=1.6)
        drawn = True
    if not drawn:
        return None
    return Line2D([], [], color="0.2", linestyle=(0, (5, 2)), linewidth=1.6,
                  label="handover ceiling (2 thr)")


# --- figures -------------------------------------------------------------

def _save(fig, out_dir, rel):
    from .figures import FORMATS, SAVE_METADATA
    for ext in FORMATS:
        fig.savefig(os.path.join(out_dir, f"{rel}.{ext}"), format=ext,
                    dpi=fig.dpi, metadata=SAVE_METADATA[ext])


def bar_figure(cdf, out_dir):
    """figures/coherence_bars: median ns by state and op, one panel per
    distance class (median over that class's pairs)."""
    from matplotlib.figure import Figure
    meds = class_medians(cdf)
    ds = list(meds)
    fig = Figure(figsize=(8.0, 2.6 + 2.2 * len(ds)), dpi=120,
                 layout="constrained")
    colours = {"M": "#d62728", "E": "#1f77b4", "S": "#2ca02c", "I": "#9467bd"}
    width = 0.2
    x = np.arange(len(OPS))
    ymax = max((v for m in meds.values() for v in m.values()), default=1.0)
    for i, d in enumerate(ds):
        ax = fig.add_subplot(len(ds), 1, i + 1)
        for j, s in enumerate(STATES):
            ys = [meds[d].get((s, o), np.nan) for o in OPS]
            ax.bar(x + (j - 1.5) * width, ys, width, color=colours[s],
                   label=f"{s} ({STATE_NAMES[s]})")
        ax.set_xticks(x, OPS)
        ax.set_ylim(0, ymax * 1.15)
        pairs = cdf[(cdf["distance"] == d) & (cdf["state"] == "E")]
        npairs = len(pairs[["cpu_a", "cpu_b"]].drop_duplicates())
        ax.set_title(f"{d}: median over {npairs} pair(s) (matrix)"
                     if npairs != 1 else
                     f"{d}: cpu {pairs['cpu_a'].iloc[0]} -> "
                     f"{pairs['cpu_b'].iloc[0]}", fontsize=10)
        ax.set_ylabel("median ns")
        if i == 0:
            ax.legend(fontsize=8, ncols=4, loc="upper left", frameon=False)
    fig.suptitle("Cache-line operation latency by state (timer overhead "
                 "subtracted)", fontsize=11)
    _save(fig, out_dir, "figures/coherence_bars")
    return "figures/coherence_bars"


def heat_map_figure(cdf, out_dir):
    """figures/coherence_heatmap: median load-from-M ns per ordered pair,
    when every ordered pair of the CPUs seen was measured; else None."""
    loads = cdf[(cdf["state"] == "M") & (cdf["op"] == "load")]
    cpus = sorted(set(loads["cpu_a"]) | set(loads["cpu_b"]))
    pairs = set(zip(loads["cpu_a"], loads["cpu_b"]))
    if len(cpus) < 2 or len(pairs) < len(cpus) * (len(cpus) - 1):
        return None
    from matplotlib.figure import Figure
    index = {c: i for i, c in enumerate(cpus)}
    grid = np.full((len(cpus), len(cpus)), np.nan)
    for a, b, v in zip(loads["cpu_a"], loads["cpu_b"], loads["median_ns"]):
        grid[index[a], index[b]] = v
    size = min(10.0, 3.5 + 0.35 * len(cpus))
    fig = Figure(figsize=(size + 1.2, size), dpi=120, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(grid, cmap="viridis", origin="upper")
    ticks = range(len(cpus))
    step = max(1, len(cpus) // 16)
    ax.set_xticks(list(ticks)[::step], [str(c) for c in cpus][::step])
    ax.set_yticks(list(ticks)[::step], [str(c) for c in cpus][::step])
    ax.set_xlabel("cpu_b (loads)")
    ax.set_ylabel("cpu_a (stored last)")
    ax.grid(False)
    if len(cpus) <= 16:
        lo, hi = np.nanmin(grid), np.nanmax(grid)
        for i in range(len(cpus)):
            for j in range(len(cpus)):
                if np.isfinite(grid[i, j]):
                    # Dark text on the light (high) end of viridis.
                    light = hi > lo and (grid[i, j] - lo) / (hi - lo) > 0.6
                    ax.text(j, i, f"{grid[i, j]:.0f}", ha="center",
                            va="center", fontsize=7,
                            color="k" if light else "w")
    fig.colorbar(im, ax=ax, label="median ns")
    ax.set_title("Load from a line Modified in another CPU (median ns)",
                 fontsize=10)
    _save(fig, out_dir, "figures/coherence_heatmap")
    return "figures/coherence_heatmap"


def make_figures(cdf, out_dir):
    """Both figures (the heat map only when all pairs were measured)."""
    from .figures import configure_matplotlib
    configure_matplotlib()
    os.makedirs(os.path.join(out_dir, "figures"), exist_ok=True)
    made = [("Latency by state and operation", bar_figure(cdf, out_dir))]
    heat = heat_map_figure(cdf, out_dir)
    if heat:
        made.append(("Heat map: load from M by CPU pair", heat))
    return made


# --- markdown ------------------------------------------------------------

def _fmt(v, spec=".1f"):
    return "" if v is None or not np.isfinite(v) else format(v, spec)


def markdown(cdf, lines, path, figures, ceiling_rows, manifest=None,
             unmodelled=()):
    """The report section (list of lines). unmodelled: the data-structure
    workloads with two-thread runs, which get no ceiling row."""
    out = ["## Coherence: what moving a cache line costs here", ""]
    out.append(f"Source: `{path}`.")
    method = (manifest or {}).get("method", {})
    if method:
        mins = method.get("timer_overhead_min_cycles_by_cpu", {})
        over = ", ".join(f"cpu {k}: {v}" for k, v in sorted(
            mins.items(), key=lambda kv: int(kv[0])))
        out.append(f"Repetitions: {method.get('reps')} per state and "
                   f"operation ({method.get('heat_map_reps')} per heat-map "
                   f"pair), over {method.get('lines')} lines one per 4 KiB "
                   f"page. Timer overhead (two counter reads, minimum, "
                   f"ticks), subtracted from every sample: {over}.")
    out.append("")
    for title, rel in figures:
        out += [f"![{title}]({rel}.png)", "",
                f"Also: [SVG]({rel}.svg), [PDF]({rel}.pdf)", ""]
    meds = class_medians(cdf)
    for d, m in meds.items():
        out += [f"### Median ns, {d}", "",
                "| state | " + " | ".join(OPS) + " |",
                "|---|" + "---:|" * len(OPS)]
        for s in STATES:
            out.append(f"| {s} | " + " | ".join(
                _fmt(m.get((s, o))) for o in OPS) + " |")
        out.append("")
    if lines is not None:
        out += ["### The handover ceiling", "",
                "ceiling = 1 / (lines x store-to-M latency + cs_ns); lines ="
                " the lock's own lines + cs_lines (at least 1: the "
                "harness's record line is the first). Throughput above the ceiling means the lock "
                "re-granted itself to the same thread (no line moved); "
                "handovers/ceiling must stay at or below 1.", ""]
        if unmodelled:
            out += ["No ceiling for the data-structure workload(s) "
                    + ", ".join(f"`{w}`" for w in unmodelled)
                    + ": the model is the lock microbenchmark's (its "
                    "cs_lines lines, one chain of transfers per handover).",
                    ""]
        t = transfer_ns(cdf)
        if ceiling_rows:
            out += ["| lock | cs_lines | lines | store to M (ns) | ceiling "
                    "(M/s) | median (M ops/s) | throughput / ceiling | "
                    "handovers / ceiling |",
                    "|---|---:|---:|---:|---:|---:|---:|---:|"]
            for r in ceiling_rows:
                out.append(
                    f"| {r['lock']} | {r['workload'][0]} | {r['lines']} | "
                    f"{_fmt(r['transfer_ns'])} ({r['source']}) | "
                    f"{_fmt(r['ceiling_ops_per_sec'] / 1e6, '.3f')} | "
                    f"{_fmt(r['ops_per_sec'] / 1e6, '.3f')} | "
                    f"{_fmt(r['fraction'], '.2f')} | "
                    f"{_fmt(r['handover_fraction'], '.2f')} |")
            out.append("")
            over = sorted(r["lock"] for r in ceiling_rows
                          if r["handover_fraction"] > 1.05)
            if over:
                out += [f"**Note: {', '.join(over)} handed over faster "
                        "than the ceiling allows: this coherence result does "
                        "not describe the CPUs these runs had (another "
                        "machine, or another boot of a VM whose vCPUs the "
                        "host placed elsewhere). Measure both in one "
                        "session.**", ""]
        elif not unmodelled and (t is not None or len(meds)):
            # No series to set against the ceiling: the model's ceilings at
            # cs_lines 1 (not where every two-thread run was a data-structure
            # workload: the note above says why there is none).
            out += ["| lock | lock lines | why | " + " | ".join(
                f"ceiling {d} (M/s, cs_lines 1)" for d in meds) + " |",
                "|---|---:|---|" + "---:|" * len(meds)]
            for _, r in lines.sort_values("lock").iterrows():
                n = int(r["lock_lines"]) + max(int(r["harness_lines"]), 1)
                cells = []
                for d in meds:
                    v = meds[d].get(("M", "store"))
                    cells.append(_fmt(ceiling_ops(n, v, 0) / 1e6, ".2f")
                                 if v else "")
                out.append(f"| {r['lock']} | {r['lock_lines']} | "
                           f"{r['why']} | " + " | ".join(cells) + " |")
            out.append("")
    return out


def report_only(directory, manifest=None):
    """A coherence folder without runs.csv: figures and report.md."""
    path = os.path.join(directory, CSV_NAME)
    cdf, lines = load(path)
    figures = make_figures(cdf, directory)
    text = ["# LockLab coherence report", ""]
    if manifest:
        m = manifest.get("machine", {})
        text += [f"Machine: `{m.get('host', '')}` ({m.get('cpu_model', '')}),"
                 f" {manifest.get('topology', '')}; command: "
                 f"`{manifest.get('command', '')}`; build "
                 f"`{manifest.get('build', {}).get('git_commit', '')}`; load "
                 f"average at start `{manifest.get('loadavg_at_start', '')}`"
                 f" (other work preempts the probe's threads).", ""]
    text += markdown(cdf, lines, CSV_NAME, figures, [], manifest)
    with open(os.path.join(directory, "report.md"), "w", encoding="utf-8",
              newline="\n") as fh:
        fh.write("\n".join(text).rstrip("\n") + "\n")


def for_runs(runs_df, directory, explicit=None):
    """(report section lines, ceiling rows) for a results folder; both
    empty when no coherence result belongs with it."""
    path = find(directory, explicit)
    if path is None:
        return [], []
    cdf, lines = load(path)
    rows = ceilings(runs_df, directory, cdf, lines)
    unmodelled = unmodelled_workloads(runs_df)
    fig_dir = os.path.join(directory, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    from .figures import configure_matplotlib
    configure_matplotlib()
    figs = [("Coherence: latency by state and operation",
             bar_figure(cdf, directory))]
    heat = heat_map_figure(cdf, directory)
    if heat:
        figs.append(("Coherence: load from M by CPU pair", heat))
    rel = os.path.relpath(path, directory)
    from .load import load_manifest
    manifest = load_manifest(os.path.dirname(os.path.abspath(path)))[0]
    return markdown(cdf, lines, rel, figs, rows, manifest,
                    unmodelled), rows
