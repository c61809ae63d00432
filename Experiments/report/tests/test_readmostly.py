"""The read-mostly figures and tables (readmostly.py) on a small synthetic
runs.csv with read ratios: drawn with ratios, skipped without, the thread
count they use, and table values that are the medians of the input rows."""

import csv
import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import write_runs_csv
from report import options as ropts
from report.figures import FIGURE_STEMS, configure_matplotlib
from report.load import REQUIRED_COLUMNS, load_runs, read_ratio
from report.options import ReportOptions
from report.readmostly import (choose_threads, draw_read_ratio,
                               draw_read_update, groups, make_read_figures,
                               panels, ratio_stats, read_rows, read_scaling)
from report.tables import si

# (workload label base, options base, read ratios); label and options get
# `read-ratio=N` as the harness writes them.
WORKLOADS = (("snapshot", "lines=1", (0, 50, 90, 100)),
             ("hashtable:keys=64", "keys=64", (0, 100)))
LOCKS = {"rwlock": 4e6, "mcs": 3e6}     # ops/s at 1 thread, ratio 0
THREADS = (1, 2, 4)                     # 4 > the CPUs: oversubscribed
REPEAT_FACTORS = (1.0, 1.1, 1.9)        # median != mean
SLUG = "compact-cl-cs-ncs0-d100ms"
READ_COLUMNS = ("read_ops_per_sec", "update_ops_per_sec", "read_lat_p50_ns",
                "read_lat_p99_ns", "update_lat_p50_ns", "update_lat_p99_ns",
                "min_thread_updates", "read_overlaps")


def _ops(lock, threads, ratio, rep):
    """A made-up throughput (ops/s): readers scale with the ratio."""
    return (LOCKS[lock] * (1 + 0.3 * (threads - 1)) * (1 + ratio / 50.0)
            * REPEAT_FACTORS[rep])


def write_read_csv(directory, workloads=WORKLOADS, threads=THREADS,
                   over_from=4):
    """A runs.csv of structure workloads at several read ratios, with the
    read/update columns of newer CSVs (the sample folder's layout)."""
    header = list(REQUIRED_COLUMNS) + ["status", "workload",
                                       "workload_options",
                                       "lat_samples"] + list(READ_COLUMNS)
    rows, rid = [], 0
    for base, opts, ratios in workloads:
        for lock in sorted(LOCKS):
            for ratio in ratios:
                for n in threads:
                    for rep in range(len(REPEAT_FACTORS)):
                        rid += 1
                        x = _ops(lock, n, ratio, rep)
                        reads = x * ratio / 100.0
                        r = {"run_id": str(rid), "lock": lock, "threads": n,
                             "placement": "compact", "nodes": 1,
                             "oversubscribed": 1 if n >= over_from else 0,
                             "cs_lines": "", "cs_ns": "", "ncs_ns": 0,
                             "duration_s": "0.1", "repeat": rep + 1,
                             "ops": int(x / 10), "ops_per_sec": "%.1f" % x,
                             "jain_fairness": "0.99",
                             "min_thread_ops": 1, "max_thread_ops": 2,
                             "lat_p50_ns": "100", "lat_p99_ns": "200",
                             "lat_p999_ns": "300", "lat_max_ns": "400",
                             "lat_samples": 10,
                             "same_node_handover_frac": "",
                             "cpu_user_s": "0.1", "cpu_sys_s": "0",
                             "ctx_vol": 0, "ctx_invol": 0, "mutex_ok": 1,
                             "machine": "vm", "git_commit": "abc",
                             "status": "ok",
                             "workload": f"{base}:read-ratio={ratio}",
                             "workload_options":
                                 f"{opts};ncs-ns=0;read-ratio={ratio}",
                             "read_ops_per_sec": "%.1f" % reads,
                             "update_ops_per_sec": "%.1f" % (x - reads),
                             "min_thread_updates":
                                 0 if ratio == 100 else 100 * n + 7 * rep
                                 + ratio,
                             "read_overlaps": 0}
                        rows.append([r.get(c, "") for c in header])
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "runs.csv"), "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return os.path.join(directory, "runs.csv")


def _group(directory, read_threads=None):
    runs = load_runs(str(directory))
    rdf = read_rows(runs.df)
    (ctx, gdf), = groups(runs, rdf)
    threads, why = choose_threads(gdf, read_threads)
    return runs, ctx, gdf, threads, why


def _input(directory):
    df = pd.read_csv(os.path.join(directory, "runs.csv"))
    df["ratio"] = df["workload"].str.extract(r"read-ratio=(\d+)")[0] \
        .astype(float)
    df["base"] = df["workload"].str.replace(r":read-ratio=\d+", "",
                                            regex=True)
    return df


def test_read_ratio_parsed_from_options_then_label():
    assert read_ratio("lines=1;ncs-ns=0;read-ratio=90", "x") == 90.0
    assert read_ratio("", "hashtable:keys=64:read-ratio=5") == 5.0
    assert math.isnan(read_ratio("cs-lines=1", "micro"))
    assert math.isnan(read_ratio("", ""))


def test_read_figures_drawn_with_read_ratios(tmp_path):
    write_read_csv(tmp_path)
    runs, ctx, gdf, threads, why = _group(tmp_path)
    assert ctx.slug == SLUG and threads == 2
    configure_matplotlib()
    os.makedirs(tmp_path / "figures")
    index = make_read_figures(runs, str(tmp_path), ReportOptions())
    (_, _, t, _, made), = index
    assert t == 2
    assert [(stem, rel) for stem, _, rel, _ in made] == [
        ("read_ratio", f"figures/read_ratio__{SLUG}"),
        ("read_update", f"figures/read_update__{SLUG}")]
    for stem in ("read_ratio", "read_update"):
        for ext in ("png", "svg", "pdf"):
            assert (tmp_path / "figures" / f"{stem}__{SLUG}.{ext}").exists()

    at = gdf[gdf["threads"] == threads]
    pans = panels(at)
    assert [p for p, _ in pans] == ["hashtable:keys=64", "snapshot"]
    ratios = [0.0, 50.0, 90.0, 100.0]
    fig = draw_read_ratio(pans, ratios, ctx, threads, why, False)
    assert "at 2 threads" in fig._suptitle.get_text()
    inp = _input(tmp_path)
    by_title = {ax.get_title(): ax for ax in fig.axes}
    snap = by_title["snapshot"]
    assert [t.get_text() for t in snap.get_xticklabels()] == [
        "0%", "50%", "90%", "100%"]
    line = {ln.get_label(): ln for ln in snap.get_lines()}["rwlock"]
    assert list(line.get_xdata()) == [0, 1, 2, 3]
    want = [inp[(inp["lock"] == "rwlock") & (inp["base"] == "snapshot")
                & (inp["threads"] == 2) & (inp["ratio"] == r)]
            ["ops_per_sec"].median() for r in ratios]
    assert list(line.get_ydata()) == pytest.approx(want)
    ht = {ln.get_label(): ln
          for ln in by_title["hashtable:keys=64"].get_lines()}["mcs"]
    assert list(ht.get_xdata()) == [0, 3]   # only its ratios, 0 and 100
    from report.styles import lock_style
    assert line.get_color() == lock_style("rwlock").color

    fig = draw_read_update(pans, ratios, ctx, threads, why, False)
    by_title = {ax.get_title(): ax for ax in fig.axes}
    reads = {ln.get_label(): ln
             for ln in by_title["snapshot: reads"].get_lines()}["mcs"]
    updates = {ln.get_label(): ln
               for ln in by_title["snapshot: updates"].get_lines()}["mcs"]
    assert list(reads.get_xdata()) == [1, 2, 3]     # no 0%
    assert list(updates.get_xdata()) == [0, 1, 2]   # no 100%
    sel = inp[(inp["lock"] == "mcs") & (inp["base"] == "snapshot")
              & (inp["threads"] == 2)]
    assert list(reads.get_ydata()) == pytest.approx(
        [sel[sel["ratio"] == r]["read_ops_per_sec"].median()
         for r in (50, 90, 100)])
    assert list(updates.get_ydata()) == pytest.approx(
        [sel[sel["ratio"] == r]["update_ops_per_sec"].median()
         for r in (0, 50, 90)])


def test_read_figures_skipped_without_read_ratios(tmp_path):
    old, one = tmp_path / "old", tmp_path / "one"
    write_runs_csv(old)
    write_read_csv(one, workloads=(("snapshot", "lines=1", (90,)),))
    configure_matplotlib()
    for d in (old, one):
        os.makedirs(d / "figures")
        runs = load_runs(str(d))
        assert make_read_figures(runs, str(d), ReportOptions()) == [], d
        assert not [n for n in os.listdir(d / "figures")
                    if n.startswith("read_")], d
    # An older CSV whose workloads carry read ratios but no read/update
    # columns (results/reference/xeon-2vcpu-vm/delegation): nothing either.
    split = tmp_path / "split"
    write_read_csv(split)
    rows = list(csv.reader(open(split / "runs.csv")))
    keep = [i for i, c in enumerate(rows[0]) if c not in READ_COLUMNS]
    with open(split / "runs.csv", "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(
            [[r[i] for i in keep] for r in rows])
    assert make_read_figures(load_runs(str(split)), str(split),
                             ReportOptions()) == []


def test_read_thread_count_chosen_as_specified(tmp_path):
    write_read_csv(tmp_path)
    assert _group(tmp_path)[3] == 2           # largest not oversubscribed
    assert _group(tmp_path, read_threads=4)[3] == 4
    every = tmp_path / "over"
    write_read_csv(every, over_from=1)        # all oversubscribed
    assert _group(every)[3] == 4
    # Remembered in report.json once given, absent (as before) otherwise.
    assert "read_threads" not in ReportOptions().as_json()
    o = ropts.resolve(str(tmp_path), read_threads=4)
    ropts.save(str(tmp_path), o)
    assert json.load(open(tmp_path / "report.json"))["read_threads"] == 4
    assert ropts.resolve(str(tmp_path)).read_threads == 4
    assert ropts.resolve(str(tmp_path), defaults=True).read_threads is None
    assert {"read_ratio", "read_update"} <= set(FIGURE_STEMS)
    with pytest.raises(ropts.ReportError):
        ropts.parse_threads("0")


def test_ratio_table_values_are_input_medians(tmp_path):
    write_read_csv(tmp_path)
    _, _, gdf, threads, _ = _group(tmp_path)
    st = ratio_stats(gdf)
    inp = _input(tmp_path)
    assert len(st) == len(inp.groupby(["base", "lock", "ratio",
                                       "threads"]))
    for (w, lk, r, t), g in inp.groupby(["base", "lock", "ratio",
                                         "threads"]):
        s = st.loc[(w, lk, r, t)]
        for c in ("ops_per_sec", "read_ops_per_sec", "update_ops_per_sec",
                  "min_thread_updates"):
            assert s[c] == pytest.approx(g[c].median()), (w, lk, r, t, c)
        assert s["oversubscribed"] == (t == 4)
    for w, lk, one, at, x in read_scaling(gdf, threads):
        sel = inp[(inp["base"] == w) & (inp["lock"] == lk)
                  & (inp["ratio"] == 100)]
        m1 = sel[sel["threads"] == 1]["ops_per_sec"].median()
        m2 = sel[sel["threads"] == 2]["ops_per_sec"].median()
        assert (one, at) == pytest.approx((m1, m2))
        assert x == pytest.approx(m2 / m1)


def test_read_report_end_to_end(tmp_path, experiments_dir):
    write_read_csv(tmp_path)
    cmd = [sys.executable, "-m", "report", str(tmp_path)]
    r = subprocess.run(cmd + ["--read-threads", "3"], cwd=experiments_dir,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--read-threads" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run(cmd, cwd=experiments_dir, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    names = set(os.listdir(tmp_path / "figures"))
    assert f"read_ratio__{SLUG}.svg" in names
    assert f"read_update__{SLUG}.pdf" in names
    assert "read_threads" not in (tmp_path / "report.json").read_text()
    md = (tmp_path / "report.md").read_text()
    assert "## Read-mostly workloads" in md
    assert f"![Throughput against read ratio](figures/read_ratio__{SLUG}" \
        ".png)" in md
    inp = _input(tmp_path)
    sel = inp[(inp["lock"] == "rwlock") & (inp["base"] == "snapshot")
              & (inp["ratio"] == 90) & (inp["threads"] == 2)]
    row = next(line for line in md.splitlines()
               if line.startswith("| snapshot ") and "| rwlock " in line
               and "|     90 |" in line and "|       2 |" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4:7] == [si(sel[c].median()) for c in (
        "ops_per_sec", "read_ops_per_sec", "update_ops_per_sec")]
    assert cells[7] == "%.0f" % sel["min_thread_updates"].median()
    summary = list(csv.DictReader(open(tmp_path / "summary.csv")))
    s = next(x for x in summary if x["lock"] == "rwlock" and x["threads"]
             == "2" and x["workload"] == "snapshot:read-ratio=90")
    assert s["read_ratio"] == "90"
    assert float(s["read_ops_per_sec_median"]) == pytest.approx(
        sel["read_ops_per_sec"].median())
    assert float(s["min_thread_updates_median"]) == pytest.approx(
        sel["min_thread_updates"].median())
    assert np.isfinite(float(s["update_ops_per_sec_median"]))
