"""The coherence section: figures, heat map, the handover ceiling on
hand-made files, a coherence-only folder, and bad coherence files."""

import csv
import os
import subprocess
import sys

import pytest

from conftest import write_runs_csv
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
                          text=True, timeout=120)


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
    for stem in ("coherence_bars", "coherence_heatmap", "throughput"):
        assert (runs / "figures" / f"{stem}.png").is_file()
    svg = (runs / "figures" / "throughput.svg").read_text()
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
