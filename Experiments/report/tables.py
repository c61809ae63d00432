"""Numbers with units that fit them, aligned Markdown tables, summary.csv."""

from __future__ import annotations

import csv
import math

import numpy as np

from .fits import fmt

PREFIXES = (("G", 1e9), ("M", 1e6), ("k", 1e3))


def _digits(x: float) -> str:
    """Three significant digits without exponent (x >= 0)."""
    if x >= 99.95:
        return f"{x:.0f}"
    if x >= 9.995:
        return f"{x:.1f}"
    return f"{x:.2f}"


def si(value, unit: str = "") -> str:
    """8041234 -> '8.04 M', 152000 -> '152 k', 35.2 -> '35.2'; '' for a
    missing value. `unit` is appended after the prefix ('ns' -> '1.2 kns'
    is never wanted: use it for ops/s only)."""
    if value is None:
        return ""
    v = float(value)
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "inf"
    sign = "-" if v < 0 else ""
    a = abs(v)
    for prefix, div in PREFIXES:
        if a >= div * 0.9995:
            return f"{sign}{_digits(a / div)} {prefix}{unit}".rstrip()
    return f"{sign}{_digits(a)}{(' ' + unit) if unit else ''}"


def duration_ns(value) -> str:
    """Latency: '850 ns', '12.3 us', '4.56 ms', '1.20 s'; '' if missing."""
    if value is None:
        return ""
    v = float(value)
    if math.isnan(v):
        return ""
    for unit, div in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if v >= div * 0.9995:
            return f"{_digits(v / div)} {unit}"
    return f"{_digits(v)} ns"


def cell(text) -> str:
    s = str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return s.strip()


def markdown_table(header, rows, left=(0,)) -> list:
    """A Markdown table whose raw text is aligned too: every column as wide
    as its widest cell (header or value), numbers right-aligned, the
    columns in `left` left-aligned."""
    header = [cell(h) for h in header]
    rows = [[cell(c) for c in r] for r in rows]
    widths = [max([len(header[i])] + [len(r[i]) for r in rows] + [3])
              for i in range(len(header))]

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            out.append(c.ljust(widths[i]) if i in left
                       else c.rjust(widths[i]))
        return "| " + " | ".join(out) + " |"

    sep = "|" + "|".join(("-" * (widths[i] + 2)) if i in left
                         else ("-" * (widths[i] + 1) + ":")
                         for i in range(len(header))) + "|"
    return [line(header), sep] + [line(r) for r in rows]


def series_stats(df, column):
    """Median, min, max and count of `column` per (context, lock, threads),
    missing values left out."""
    v = df[["context", "lock", "threads", column]]
    v = v[np.isfinite(v[column])]
    return v.groupby(["context", "lock", "threads"])[column].agg(
        ["median", "min", "max", "count"])


SUMMARY_TAIL = (
    "threads", "oversubscribed", "repeats",
    "ops_per_sec_median", "ops_per_sec_min", "ops_per_sec_max",
    "lat_p99_ns_median", "lat_p99_ns_min", "lat_p99_ns_max",
    "latency_repeats", "jain_fairness_median", "cpu_s_per_mop_median",
)
# Appended only when runs.csv has the read/update split (newer CSVs), so
# older folders' summary.csv stays as it was: the read ratio (percent, empty
# for a workload without one), median read and update ops/s, and the median
# over repeats of the fewest updates an updating thread made.
READ_SUMMARY = ("read_ratio", "read_ops_per_sec_median",
                "update_ops_per_sec_median", "min_thread_updates_median")


def write_summary_csv(runs, path: str) -> list:
    """summary.csv: one row per configuration and thread count. Latency is
    empty where no repeat sampled an acquisition (latency_repeats = 0).
    Returns the column names."""
    df = runs.df
    ctx_cols = [c for c, _ in runs.contexts[0].key] if runs.contexts else []
    columns = ["lock"] + ctx_cols + ["figures"] + list(SUMMARY_TAIL)
    split = "read_ops_per_sec" in df.columns
    if split:
        columns += list(READ_SUMMARY)
    ops = series_stats(df, "ops_per_sec")
    lat = series_stats(df, "lat_p99_ns")
    fair = series_stats(df, "jain_fairness")
    cpu = series_stats(df, "cpu_s_per_mop")
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for (ci, lk, t), g in df.groupby(["context", "lock", "threads"],
                                         sort=True):
            ctx = runs.contexts[ci]
            key = (ci, lk, t)
            row = {"lock": lk, "figures": ctx.slug, "threads": int(t),
                   "oversubscribed": "1" if any(
                       o is True for o in g["oversubscribed"]) else "0",
                   "repeats": len(g)}
            row.update(dict(ctx.key))

            def put(stats, name):
                if key in stats.index:
                    s = stats.loc[key]
                    for k in ("median", "min", "max"):
                        row[f"{name}_{k}"] = float(s[k])
                    return int(s["count"])
                return 0

            put(ops, "ops_per_sec")
            row["latency_repeats"] = put(lat, "lat_p99_ns")
            if key in fair.index:
                row["jain_fairness_median"] = float(fair.loc[key]["median"])
            if key in cpu.index:
                row["cpu_s_per_mop_median"] = float(cpu.loc[key]["median"])
            if split:
                row.update(_read_medians(g))
            w.writerow([_full(row.get(c)) for c in columns])
    return columns


def _read_medians(g) -> dict:
    """READ_SUMMARY values of one series at one thread count (NaN where
    every repeat is missing)."""
    out = {"read_ratio": float(g["read_ratio"].iat[0])}
    for c in ("read_ops_per_sec", "update_ops_per_sec",
              "min_thread_updates"):
        v = g[c].to_numpy(dtype=float) if c in g.columns else np.array([])
        v = v[np.isfinite(v)]
        out[f"{c}_median"] = float(np.median(v)) if len(v) else math.nan
    return out


def _full(value) -> str:
    """summary.csv numbers at full precision without exponents where they
    fit (7924050.3, not 7.92405e+06): spreadsheets read either."""
    if isinstance(value, float) and math.isfinite(value):
        return "%.12g" % value
    return fmt(value)


__all__ = ["si", "duration_ns", "markdown_table", "write_summary_csv",
           "series_stats"]
