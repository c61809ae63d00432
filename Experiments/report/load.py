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
# `workload` (micro, counter, queue, ...) is last; folders written before workloads existed
# read as micro.
WORKLOAD_COLUMNS = ("cs_lines", "cs_ns", "ncs_ns", "placement", "workload")
CONFIG_COLUMNS = ("lock",) + WORKLOAD_COLUMNS

NUMERIC_COLUMNS = (
    "threads", "nodes", "duration_s", "repeat", "ops", "ops_per_sec",
    "jain_fairness", "min_thread_ops", "max_thread_ops", "lat_p50_ns",
    "lat_p99_ns", "lat_p999_ns", "lat_max_ns", "same_node_handover_frac",
    "cpu_user_s", "cpu_sys_s", "ctx_vol", "ctx_invol",
)

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
    if "workload" not in raw.columns:
        raw["workload"] = "micro"
    df = raw[list(REQUIRED_COLUMNS) + ["workload"]
             + (["status"] if "status" in raw.columns else [])].copy()
    for c in df.columns:
        df[c] = df[c].astype(str).str.strip()

    skipped_status = 0
    if "status" in df.columns:
        keep = df["status"].str.lower().isin(["ok", ""])
        skipped_status = int((~keep).sum())
        df = df[keep]

    for c in NUMERIC_COLUMNS:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
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

    # Deterministic order, independent of the CSV's row order.
    order = sorted(range(len(df)), key=lambda i: (
        df["lock"].iat[i], workload_sort_key(
            tuple(df[c].iat[i] for c in WORKLOAD_COLUMNS)),
        df["threads"].iat[i], _num_key(str(df["repeat"].iat[i])),
        df["run_id"].iat[i]))
    df = df.iloc[order].reset_index(drop=True)

    manifest, manifest_error = load_manifest(directory)
    return Runs(df=df, total_rows=total, skipped_status=skipped_status,
                skipped_bad=skipped_bad, manifest=manifest,
                manifest_error=manifest_error)


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
