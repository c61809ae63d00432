"""The coherence section: figures, heat map, the handover ceiling on
hand-made files, a coherence-only folder, and bad coherence files."""

import csv
import os
import subprocess
import sys

import pytest

from conftest import SLUG, write_runs_csv
from report import coherence

EXPERIMENTS = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
HEADER = ["state", "op", "cpu_a", "cpu_b", "distance", "reps", "min_ns",
          "median_ns", "p99_ns", "min_cycles", "median_cycles"]


def write_coherence(directory, cpus=(0, 1, 2, 3), store_ns=100.0):
    """Full matrix on 0->1 (same-l3) and 0->2 (other-package), M load and
    store on every other ordered pair: a complete heat map."""
    os.makedirs(directory, exist_ok=True)
    rows = []
    klass = {(0, 1): "same-l3", (0, 2): "other-package"}

    def dist(a, b):
        return "same-l3" if (a < 2) == (b < 2) else "other-package"
    for (a, b), d in klass.items():
        for s in coherence.STATES:
            for o in coherence.OPS:
                v = 5.0 if (s, o) == ("S", "load") else (
                    store_ns if d == "same-l3" else 2 * store_ns)
                rows.append([s, o, a, b, d, 100, v / 2, v, v * 2, v, v])
    for a in cpus:
        for b in cpus:
            if a != b and (a, b) not in klass:
                v = store_ns if dist(a, b) == "same-l3" else 2 * store_ns
                for o in ("load", "store"):
                    rows.append(["M", o, a, b, dist(a, b), 25, v / 2, v,
                                 v * 2, v, v])
    with open(os.path.join(directory, "coherence.csv"), "w",
              newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
    with open(os.path.join(directory, "handover_lines.csv"), "w",
              newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["lock", "lock_lines", "harness_lines", "why"])
        w.writerow(["mcs", 2, 1, "two queue nodes"])
        w.writerow(["tas", 1, 1, "the lock word"])


def write_threads_csv(directory, pair=(0, 1)):
    """threads.csv for the runs.csv fixture: two-thread runs on `pair`."""
    with open(os.path.join(directory, "runs.csv"), newline="") as fh:
        runs = list(csv.DictReader(fh))
    with open(os.path.join(directory, "threads.csv"), "w",
              newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["run_id", "lock", "threads", "thread", "cpu"])
        for r in runs:
            n = int(float(r["threads"]))
            for t in range(n):
                cpu = pair[t] if n == 2 else t
                w.writerow([r["run_id"], r["lock"], n, t, cpu])


def report(directory, *extra):
    return subprocess.run([sys.executable, "-m", "report", str(directory),
                           *extra], cwd=EXPERIMENTS, capture_output=True,
                          text=True, timeout=600)


def test_ceiling_arithmetic_on_hand_made_files(tmp_path):
    runs = tmp_path / "quick"
    write_runs_csv(runs)
    write_threads_csv(runs, pair=(1, 0))
    write_coherence(tmp_path / "coherence", store_ns=100.0)
    from report.load import load_runs
    df = load_runs(str(runs)).df
    path = coherence.find(str(runs))
    assert path == str(tmp_path / "coherence" / "coherence.csv")
    cdf, lines = coherence.load(path)
    rows = {r["lock"]: r for r in coherence.ceilings(df, str(runs), cdf,
                                                     lines)}
    # mcs: 2 + cs_lines 1 (the harness record's line) = 3 lines x 100 ns;
    # cs_ns 0: 3.333 M/s.
    assert rows["mcs"]["lines"] == 3
    assert rows["mcs"]["transfer_ns"] == pytest.approx(100.0)
    assert rows["mcs"]["source"] == "cpus 0,1 (same-l3)"
    assert rows["mcs"]["ceiling_ops_per_sec"] == pytest.approx(1e9 / 300)
    two = df[(df["lock"] == "mcs") & (df["threads"] == 2)]
    assert rows["mcs"]["fraction"] == pytest.approx(
        two["ops_per_sec"].median() / (1e9 / 300))
    assert rows["tas"]["lines"] == 2
    assert rows["tas"]["ceiling_ops_per_sec"] == pytest.approx(1e9 / 200)
    # cna has no line in handover_lines.csv: no ceiling.
    assert "cna:threshold=1000" not in rows


def test_ceiling_uses_the_other_package_pair(tmp_path):
    runs = tmp_path / "quick"
    write_runs_csv(runs)
    write_threads_csv(runs, pair=(0, 2))
    write_coherence(tmp_path / "coherence", store_ns=50.0)
    from report.load import load_runs
    df = load_runs(str(runs)).df
    cdf, lines = coherence.load(coherence.find(str(runs)))
    r = [x for x in coherence.ceilings(df, str(runs), cdf, lines)
         if x["lock"] == "mcs"][0]
    assert r["transfer_ns"] == pytest.approx(100.0)
    assert r["ceiling_ops_per_sec"] == pytest.approx(1e9 / 300)


def test_report_draws_ceiling_and_coherence_section(tmp_path):
    runs = tmp_path / "quick"
    write_runs_csv(runs)
    write_threads_csv(runs)
    write_coherence(tmp_path / "coherence")
    r = report(runs)
    assert r.returncode == 0, r.stderr
    text = (runs / "report.md").read_text()
    assert "## Coherence: what moving a cache line costs here" in text
    assert "| mcs | 1 | 3 | 100.0 (cpus 0,1 (same-l3)) | 3.333 |" in text
    assert "### Median ns, other-package" in text
    for stem in ("coherence_bars", "coherence_heatmap",
                 f"throughput__{SLUG}"):
        assert (runs / "figures" / f"{stem}.png").is_file()
    svg = (runs / "figures" / f"throughput__{SLUG}.svg").read_text()
    assert "handover ceiling" in svg


def test_coherence_only_folder_and_deterministic_output(tmp_path):
    d = tmp_path / "coherence"
    write_coherence(d)
    assert report(d).returncode == 0
    first = {p: (d / p).read_bytes() for p in
             ("report.md", "figures/coherence_bars.svg",
              "figures/coherence_heatmap.png")}
    assert report(d).returncode == 0
    for p, data in first.items():
        assert (d / p).read_bytes() == data, p
    text = (d / "report.md").read_text()
    assert "| M | 100.0 | 100.0 |" in text
    assert "| mcs | 2 | two queue nodes |" in text


def test_no_heat_map_without_all_pairs(tmp_path):
    d = tmp_path / "coherence"
    write_coherence(d)
    cdf, _ = coherence.load(str(d / "coherence.csv"))
    partial = cdf[(cdf["cpu_a"] == 0)]
    assert coherence.heat_map_figure(partial, str(d)) is None


def test_bad_coherence_file_is_one_line_exit_2(tmp_path):
    runs = tmp_path / "quick"
    write_runs_csv(runs)
    bad = tmp_path / "bad.csv"
    bad.write_text("state,op\nM,load\n")
    r = report(runs, "--coherence", str(bad))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "lacks" in r.stderr
    r = report(runs, "--coherence", str(tmp_path / "missing.csv"))
    assert r.returncode == 2 and "not found" in r.stderr


def test_handovers_above_the_ceiling_are_flagged(tmp_path):
    """Every acquisition a handover, at ~20 M/s against a 3.3 M/s ceiling:
    the coherence file cannot describe these runs' CPUs."""
    import pandas as pd
    runs = tmp_path / "quick"
    write_runs_csv(runs)
    df = pd.read_csv(runs / "runs.csv", dtype=str, keep_default_na=False)
    df["handovers_per_sec"] = df["ops_per_sec"]
    df.to_csv(runs / "runs.csv", index=False)
    write_threads_csv(runs)
    write_coherence(tmp_path / "coherence")
    r = report(runs)
    assert r.returncode == 0, r.stderr
    text = (runs / "report.md").read_text()
    assert "**Note: mcs, tas handed over faster than the ceiling" in text


def write_workload_runs(directory, sets):
    """A small runs.csv: `sets` is [(workload, workload_options, cs_lines,
    cs_ns, ncs_random, {threads: ops/s})], mcs at three repeats each; the
    data-structure workloads leave cs_lines and cs_ns empty, as locklab
    writes them. handovers_per_sec = ops_per_sec / 2."""
    from report.load import REQUIRED_COLUMNS
    header = list(REQUIRED_COLUMNS) + ["lock_name", "status", "workload",
                                       "workload_options", "ncs_random",
                                       "handovers_per_sec"]
    rows = []
    for workload, options, cs_lines, cs_ns, ncs_random, rates in sets:
        for n, rate in sorted(rates.items()):
            for rep in range(3):
                xput = rate * (1.0 + 0.01 * (rep - 1))
                r = {"run_id": f"r{len(rows) + 1:04d}", "lock": "mcs",
                     "lock_name": "mcs", "status": "ok", "threads": n,
                     "placement": "compact", "nodes": 1,
                     "oversubscribed": "false", "cs_lines": cs_lines,
                     "cs_ns": cs_ns, "ncs_ns": "0", "duration_s": "0.5",
                     "repeat": rep, "ops": int(xput / 2),
                     "ops_per_sec": "%.3f" % xput, "jain_fairness": "0.99",
                     "min_thread_ops": 1, "max_thread_ops": 2,
                     "lat_p50_ns": "20.0", "lat_p99_ns": "100.0",
                     "lat_p999_ns": "400.0", "lat_max_ns": "1000",
                     "same_node_handover_frac": "1.0", "cpu_user_s": "0.5",
                     "cpu_sys_s": "0.0", "ctx_vol": 1, "ctx_invol": 1,
                     "mutex_ok": "true", "machine": "testbox",
                     "git_commit": "0123abc", "workload": workload,
                     "workload_options": options, "ncs_random": ncs_random,
                     "handovers_per_sec": "%.3f" % (xput / 2)}
                rows.append([r.get(c, "") for c in header])
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "runs.csv"), "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def test_ceiling_never_pools_workloads_and_only_models_micro(tmp_path):
    """mcs at two threads on hashtable (3 M/s) and queue (9 M/s), both with
    the same (empty) cs_lines/cs_ns, ncs_ns and placement: no ceiling row
    pools them (median 6 M/s), and neither gets one (the model is the
    microbenchmark's). Two micro contexts that differ only in ncs_random
    are two rows; a micro run with an empty workload cell is micro."""
    runs = tmp_path / "mixed"
    write_workload_runs(runs, [
        ("hashtable:read-ratio=90", "keys=1024;read-ratio=90", "", "", "0",
         {1: 5e6, 2: 3e6}),
        ("queue", "ncs-ns=0;ncs-random=0", "", "", "0", {1: 12e6, 2: 9e6}),
        ("micro", "cs-lines=1;cs-ns=0;ncs-ns=0;ncs-random=0", "1", "0", "0",
         {1: 20e6, 2: 2e6}),
        ("micro", "cs-lines=1;cs-ns=0;ncs-ns=0;ncs-random=1", "1", "0", "1",
         {1: 20e6, 2: 2.5e6}),
    ])
    write_threads_csv(runs)
    write_coherence(tmp_path / "coherence", store_ns=100.0)
    from report.load import load_runs
    df = load_runs(str(runs)).df
    cdf, lines = coherence.load(coherence.find(str(runs)))
    rows = coherence.ceilings(df, str(runs), cdf, lines)
    medians = sorted(round(r["ops_per_sec"] / 1e6, 3) for r in rows)
    assert not [m for m in medians if 3.1 < m < 8.9], (
        "hashtable (3 M/s) and queue (9 M/s) pooled into one row")
    assert medians == [2.0, 2.5], rows
    for r in rows:
        assert r["lines"] == 3                   # 2 (mcs) + cs_lines 1
        assert r["ceiling_ops_per_sec"] == pytest.approx(1e9 / 300)
        assert r["handover_fraction"] == pytest.approx(
            r["ops_per_sec"] / 2 / (1e9 / 300))
        two = df[(df["threads"] == 2) & (df["context"] == r["context"])]
        assert set(two["workload"]) == {"micro"}
    # An older CSV's empty workload cell is the microbenchmark.
    old = tmp_path / "old"
    write_workload_runs(old, [("", "", "1", "0", "0", {2: 2e6}),
                              ("queue", "", "", "", "0", {2: 9e6})])
    write_threads_csv(old)
    rows = coherence.ceilings(load_runs(str(old)).df, str(old), cdf, lines)
    assert [round(r["ops_per_sec"] / 1e6, 3) for r in rows] == [2.0]
    assert coherence.unmodelled_workloads(load_runs(str(old)).df) == [
        "queue"]
    # No two-thread run of the microbenchmark: no row.
    only = load_runs(str(old)).df
    only = only[only["workload"] == "queue"]
    assert coherence.ceilings(only, str(old), cdf, lines) == []


def test_report_draws_no_ceiling_on_a_data_structure_workload(tmp_path):
    runs = tmp_path / "mixed"
    write_workload_runs(runs, [
        ("queue", "ncs-ns=0;ncs-random=0", "", "", "0", {1: 12e6, 2: 9e6}),
        ("micro", "cs-lines=1;cs-ns=0;ncs-ns=0;ncs-random=0", "1", "0", "0",
         {1: 20e6, 2: 2e6}),
    ])
    write_threads_csv(runs)
    write_coherence(tmp_path / "coherence", store_ns=100.0)
    r = report(runs)
    assert r.returncode == 0, r.stderr
    text = (runs / "report.md").read_text()
    table = [ln for ln in text.splitlines() if ln.startswith("| mcs | ")
             and "(cpus 0,1 (same-l3))" in ln]
    assert table == ["| mcs | 1 | 3 | 100.0 (cpus 0,1 (same-l3)) | 3.333 | "
                     "2.000 | 0.60 | 0.30 |"], table
    figs = sorted(p.name for p in (runs / "figures").glob("throughput__*.svg"))
    queue = [p for p in figs if p.startswith("throughput__queue")]
    micro = [p for p in figs if not p.startswith("throughput__queue")]
    assert len(queue) == 1 and len(micro) == 1, figs
    assert "handover ceiling" in (runs / "figures" / micro[0]).read_text()
    assert "handover ceiling" not in (runs / "figures" / queue[0]).read_text()
    assert ("No ceiling for the data-structure workload(s) `queue`: the "
            "model is the lock microbenchmark's") in text


def test_only_data_structure_workloads_get_a_note_and_no_table(tmp_path):
    runs = tmp_path / "delegation"
    write_workload_runs(runs, [
        ("counter", "ncs-ns=0;ncs-random=0", "", "", "0", {1: 12e6, 2: 4e6}),
        ("queue", "ncs-ns=0;ncs-random=0", "", "", "0", {1: 12e6, 2: 9e6}),
    ])
    write_threads_csv(runs)
    write_coherence(tmp_path / "coherence", store_ns=100.0)
    r = report(runs)
    assert r.returncode == 0, r.stderr
    text = (runs / "report.md").read_text()
    assert ("No ceiling for the data-structure workload(s) `counter`, "
            "`queue`: ") in text
    assert "| mcs |" not in text.split("### The handover ceiling")[1]
    for svg in (runs / "figures").glob("throughput__*.svg"):
        assert "handover ceiling" not in svg.read_text(), svg.name
