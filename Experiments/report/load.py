"""Reading and validating DIR/runs.csv (and the optional DIR/manifest.json)."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = (
    "run_id", "lock", "threads", "placement", "nodes", "oversubscribed",
    "cs_lines", "cs_ns", "ncs_ns", "duration_s", "repeat", "ops",
    "ops_per_sec", "jain_fairness", "min_thread_ops", "max_thread_ops",
    "lat_p50_ns", "lat_p99_ns", "lat_p999_ns", "lat_max_ns",
    "same_node_handover_frac", "cpu_user_s", "cpu_sys_s", "ctx_vol",
    "ctx_invol", "mutex_ok", "machine", "git_commit",
)

# The workload part of a configuration; a configuration is (lock, *WORKLOAD).
WORKLOAD_COLUMNS = ("cs_lines", "cs_ns", "ncs_ns", "placement")
CONFIG_COLUMNS = ("lock",) + WORKLOAD_COLUMNS

# A series is a lock in a context; the context is every column of the run's
# configuration except the lock, the thread count and the repeat. Runs that
# differ in any of these are never pooled. (Columns a CSV lacks are left
# out; `workload`/`workload_options` are the data-structure workloads.)
CONTEXT_COLUMNS = (
    "placement", "virtual_nodes", "workload", "workload_options",
    "cs_lines", "cs_ns", "ncs_ns", "ncs_random", "mem_node", "duration_s",
    "warmup_s", "machine", "git_commit",
)
# Shown in the file-name slug only when they differ within the folder.
SLUG_IF_VARIES = {"warmup_s": "w", "machine": "m", "git_commit": "b"}

NUMERIC_COLUMNS = (
    "threads", "nodes", "duration_s", "repeat", "ops", "ops_per_sec",
    "jain_fairness", "min_thread_ops", "max_thread_ops", "lat_p50_ns",
    "lat_p99_ns", "lat_p999_ns", "lat_max_ns", "same_node_handover_frac",
    "cpu_user_s", "cpu_sys_s", "ctx_vol", "ctx_invol",
)
OPTIONAL_NUMERIC = ("lat_samples", "lat_sample_every", "virtual_nodes",
                    "warmup_s", "handovers_per_sec")
# handovers_per_sec: kept for the coherence section's handover ceiling
# (coherence.ceilings), so that no later stage re-reads runs.csv.
LATENCY_COLUMNS = ("lat_p50_ns", "lat_p99_ns", "lat_p999_ns", "lat_max_ns")
# The read/update split of workloads with reads (newer CSVs only): ops/s,
# ns, and counts of operations (min_thread_updates: the fewest updates any
# updating thread made; read_overlaps: reads that overlapped a write).
READ_COLUMNS = ("read_ops_per_sec", "update_ops_per_sec", "read_lat_p50_ns",
                "read_lat_p99_ns", "update_lat_p50_ns", "update_lat_p99_ns",
                "min_thread_updates", "read_overlaps")
READ_RATIO_OPTION = "read-ratio"

MANIFEST_KEYS = ("host", "cpu_model", "kernel", "command")


class ReportError(Exception):
    """A problem with the input that ends the run with one clear line."""


@dataclass
class Runs:
    df: pd.DataFrame            # usable rows, sorted deterministically
    total_rows: int             # rows in runs.csv
    skipped_status: int         # rows dropped because status != ok
    skipped_bad: int            # rows dropped because threads unusable
    manifest: dict = field(default_factory=dict)
    manifest_error: str = ""
    contexts: list = field(default_factory=list)   # [Context], stable order
    no_latency: int = 0         # rows with no latency sample (lat empty)


@dataclass(frozen=True)
class Context:
    """Everything a series holds constant except the lock."""
    key: tuple                  # ((column, value), ...) in CONTEXT_COLUMNS
    slug: str                   # file-name part: compact-vn0-cl1-...-d1s

    def get(self, column, default=""):
        return dict(self.key).get(column, default)

    def label(self) -> str:
        """Short: the workload, placement, memory and duration (warm-up,
        machine and build are in the provenance)."""
        v = dict(self.key)
        parts = []
        if v.get("workload", "") not in ("", "micro"):
            parts.append(v["workload"] + (f" {v['workload_options']}"
                                          if v.get("workload_options")
                                          else ""))
        parts.append(f"cs_lines={v.get('cs_lines', '')}, "
                     f"cs_ns={v.get('cs_ns', '')}, "
                     f"ncs_ns={v.get('ncs_ns', '')}"
                     + (" random" if parse_bool(v.get("ncs_random", "0"))
                        else ""))
        if v.get("placement"):
            parts.append(v["placement"])
        if v.get("virtual_nodes", "0") not in ("", "0"):
            parts.append(f"{v['virtual_nodes']} virtual nodes")
        if v.get("mem_node", "local") not in ("", "local"):
            parts.append(f"memory {v['mem_node']}")
        parts.append(f"{v.get('duration_s', '')} s runs")
        return ", ".join(parts)


def _num_key(value: str):
    """Sort key: numbers numerically, then anything else as text."""
    try:
        f = float(value)
        if math.isnan(f):
            raise ValueError
        return (0, f, value)
    except ValueError:
        return (1, 0.0, value)


def workload_sort_key(workload: tuple) -> tuple:
    return tuple(_num_key(v) for v in workload)


def parse_bool(value: str):
    v = str(value).strip().lower()
    if v in ("1", "true", "yes", "y", "t"):
        return True
    if v in ("0", "false", "no", "n", "f"):
        return False
    return None


def load_runs(directory: str) -> Runs:
    path = os.path.join(directory, "runs.csv")
    if not os.path.isdir(directory):
        raise ReportError(f"results directory not found: {directory}")
    if not os.path.isfile(path):
        raise ReportError(f"runs.csv not found: {path}")
    try:
        # Everything as text first: grouping keys stay exactly as written.
        raw = pd.read_csv(path, dtype=str, keep_default_na=False,
                          na_filter=False, encoding="ascii",
                          skipinitialspace=True)
    except (UnicodeDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as exc:
        raise ReportError(f"cannot parse {path}: {exc}".splitlines()[0])
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise ReportError(
            f"{path} lacks required column(s): {', '.join(missing)}")

    total = len(raw)
    extra = [c for c in ("status", "lock_name") + OPTIONAL_NUMERIC
             + READ_COLUMNS + CONTEXT_COLUMNS
             if c in raw.columns and c not in REQUIRED_COLUMNS]
    df = raw[list(REQUIRED_COLUMNS) + list(dict.fromkeys(extra))].copy()
    for c in df.columns:
        df[c] = df[c].astype(str).str.strip()

    skipped_status = 0
    if "status" in df.columns:
        keep = df["status"].str.lower().isin(["ok", ""])
        skipped_status = int((~keep).sum())
        df = df[keep]

    numeric = NUMERIC_COLUMNS + tuple(c for c in OPTIONAL_NUMERIC
                                      + READ_COLUMNS if c in df.columns)
    for c in numeric:
        df["_text_" + c] = df[c]   # as written: context keys stay exact
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    # No sample is not zero: an empty cell is missing, and so is any value
    # of a run that recorded lat_samples = 0 (older CSVs wrote 0 there).
    no_lat = np.zeros(len(df), dtype=bool)
    if "lat_samples" in df.columns:
        no_lat = (df["lat_samples"] == 0).to_numpy().copy()
    no_lat = no_lat | df["lat_p50_ns"].isna().to_numpy()
    for c in LATENCY_COLUMNS:
        df.loc[no_lat, c] = np.nan
    df["oversubscribed"] = df["oversubscribed"].map(parse_bool)
    df["mutex_ok"] = df["mutex_ok"].map(parse_bool)

    good = np.isfinite(df["threads"]) & (df["threads"] >= 1)
    skipped_bad = int((~good).sum())
    df = df[good].copy()
    df["threads"] = df["threads"].round().astype(int)
    if df.empty:
        raise ReportError(f"{path} has no usable rows "
                          f"({total} rows, {skipped_status} not ok, "
                          f"{skipped_bad} without a thread count)")

    cpu = df["cpu_user_s"] + df["cpu_sys_s"]
    mops = df["ops"] / 1e6
    df["cpu_s_per_mop"] = np.where(mops > 0, cpu / mops.where(mops > 0),
                                   np.nan)

    df["read_ratio"] = [read_ratio(o, w) for o, w in zip(
        df.get("workload_options", pd.Series("", index=df.index)),
        df.get("workload", pd.Series("", index=df.index)))]

    # Deterministic order, independent of the CSV's row order.
    contexts, ids = _contexts(df)
    df["context"] = ids
    order = sorted(range(len(df)), key=lambda i: (
        df["context"].iat[i], df["lock"].iat[i], workload_sort_key(
            tuple(df[c].iat[i] for c in WORKLOAD_COLUMNS)),
        df["threads"].iat[i], _num_key(str(df["repeat"].iat[i])),
        df["run_id"].iat[i]))
    df = df.iloc[order].reset_index(drop=True)

    manifest, manifest_error = load_manifest(directory)
    return Runs(df=df, total_rows=total, skipped_status=skipped_status,
                skipped_bad=skipped_bad, manifest=manifest,
                manifest_error=manifest_error, contexts=contexts,
                no_latency=int(df["lat_p50_ns"].isna().sum()))


def read_ratio(options: str, label: str = "") -> float:
    """The workload's read ratio in percent (0..100) from its
    `workload_options` (`lines=1;read-ratio=90`, `;`-separated), else from
    its label (`snapshot:read-ratio=90`, `:`-separated); NaN when the
    workload has no read ratio (micro, older CSVs)."""
    for text, sep in ((options, ";"), (label, ":")):
        for part in str(text or "").split(sep):
            key, _, value = part.strip().partition("=")
            if key == READ_RATIO_OPTION:
                try:
                    return float(value)
                except ValueError:
                    return math.nan
    return math.nan


def without_read_ratio(text: str, sep: str) -> str:
    """`snapshot:read-ratio=90` -> `snapshot` (sep ":"); `lines=1;
    read-ratio=90` -> `lines=1` (sep ";"): the other options kept."""
    parts = [p for p in str(text or "").split(sep)
             if p.strip().partition("=")[0] != READ_RATIO_OPTION]
    return sep.join(parts)


def _text(df, column):
    t = "_text_" + column
    return df[t] if t in df.columns else df[column]


def _duration_token(text: str) -> str:
    try:
        v = float(text)
    except ValueError:
        return _safe(text)
    if v == int(v):
        return f"{int(v)}s"
    ms = v * 1000.0
    if abs(ms - round(ms)) < 1e-6:
        return f"{int(round(ms))}ms"
    return _safe(f"{v:g}s")


def _safe(text: str) -> str:
    """File-name safe, and no dots (LaTeX's graphicx reads the first dot as
    the extension)."""
    import re
    s = str(text).replace(".", "p")
    return re.sub(r"[^A-Za-z0-9_+=-]+", "_", s)


def _slug(values: dict, varying: set) -> str:
    """The context's part of a figure's file name. Always the same for the
    same configuration: placement, virtual nodes, workload, critical and
    non-critical section, memory placement, duration; warm-up, machine and
    build only when the folder holds several of them."""
    v = values
    parts = []
    if v.get("workload", "") not in ("", "micro"):
        parts.append(_safe(v["workload"]))
        if v.get("workload_options", ""):
            parts.append(_safe(v["workload_options"]))
    if "placement" in v:
        parts.append(_safe(v["placement"]))
    if "virtual_nodes" in v:
        parts.append("vn" + _safe(v["virtual_nodes"] or "0"))
    parts.append(f"cl{_safe(v['cs_lines'])}")
    parts.append(f"cs{_safe(v['cs_ns'])}")
    rnd = "r" if parse_bool(v.get("ncs_random", "0")) else ""
    parts.append(f"ncs{_safe(v['ncs_ns'])}{rnd}")
    if "mem_node" in v:
        parts.append("mem" + _safe(v["mem_node"]))
    parts.append("d" + _duration_token(v["duration_s"]))
    for col, prefix in SLUG_IF_VARIES.items():
        if col in varying:
            parts.append(prefix + _safe(v.get(col, "")))
    return "-".join(parts)


def _contexts(df):
    cols = [c for c in CONTEXT_COLUMNS if c in df.columns]
    texts = {c: _text(df, c).astype(str).to_numpy() for c in cols}
    keys = [tuple((c, texts[c][i]) for c in cols) for i in range(len(df))]
    distinct = sorted(set(keys), key=lambda k: tuple(
        _num_key(v) for _, v in k))
    varying = {c for c in cols if len(set(texts[c])) > 1}
    contexts = []
    seen = {}
    for k in distinct:
        slug = _slug(dict(k), varying)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        if n:
            slug = f"{slug}-{n + 1}"
        contexts.append(Context(key=k, slug=slug))
    index = {c.key: i for i, c in enumerate(contexts)}
    return contexts, [index[k] for k in keys]


def load_manifest(directory: str):
    path = os.path.join(directory, "manifest.json")
    if not os.path.isfile(path):
        return {}, ""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        return {}, f"manifest.json unreadable: {exc}".splitlines()[0]
    if not isinstance(data, dict):
        return {}, "manifest.json is not a JSON object"
    return data, ""


def workloads(df: pd.DataFrame) -> list:
    """Distinct (cs_lines, cs_ns, ncs_ns, placement), in a stable order."""
    keys = {tuple(r) for r in df[list(WORKLOAD_COLUMNS)].itertuples(
        index=False, name=None)}
    return sorted(keys, key=workload_sort_key)


def locks(df: pd.DataFrame) -> list:
    return sorted(set(df["lock"]))
