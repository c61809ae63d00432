import csv
import hashlib
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import SLUG, TRUE_USL, write_runs_csv
from report.fits import FIT_COLUMNS, amdahl, fit_points, fmt, usl, usl_peak
from report.load import REQUIRED_COLUMNS


def run_report(experiments_dir, directory, module=True):
    if module:
        cmd = [sys.executable, "-m", "report", str(directory)]
    else:
        cmd = [sys.executable,
               os.path.join(experiments_dir, "report", "make_report.py"),
               str(directory)]
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)
    return subprocess.run(cmd, cwd=experiments_dir if module else "/",
                          capture_output=True, text=True, env=env,
                          timeout=120)


def read_fits(directory):
    with open(os.path.join(directory, "fits.csv"), newline="") as fh:
        return list(csv.DictReader(fh))


def digest_tree(directory):
    out = {}
    paths = ["fits.csv", "summary.csv", "report.md", "report.html",
             "report.json"] + [
        os.path.join("figures", n)
        for n in sorted(os.listdir(os.path.join(directory, "figures")))]
    for rel in paths:
        with open(os.path.join(directory, rel), "rb") as fh:
            out[rel] = hashlib.sha256(fh.read()).hexdigest()
    return out


# --- fitting -------------------------------------------------------------

def test_usl_fit_recovers_known_parameters(tmp_path):
    """In-process fit of the fixture's per-run points."""
    import pandas as pd
    write_runs_csv(tmp_path)
    df = pd.read_csv(tmp_path / "runs.csv")
    df = df[df["status"] == "ok"]
    for lock, (lam, sigma, kappa) in TRUE_USL.items():
        g = df[df["lock"] == lock]
        r = fit_points(g["threads"], g["ops_per_sec"])
        assert r["fit_points"] == 48, lock
        assert r["usl_note"] == "" and r["amdahl_note"] == "", r
        assert r["usl_lambda_ops_per_sec"] == pytest.approx(lam, rel=0.02)
        assert r["usl_sigma"] == pytest.approx(sigma, rel=0.05), lock
        assert r["usl_kappa"] == pytest.approx(kappa, rel=0.05), lock
        # The standard errors are honest: truth within 4 SE.
        assert abs(r["usl_sigma"] - sigma) < 4 * r["usl_sigma_se"], lock
        assert abs(r["usl_kappa"] - kappa) < 4 * r["usl_kappa_se"], lock
        assert r["usl_peak_threads"] == pytest.approx(
            math.sqrt((1 - sigma) / kappa), rel=0.05)
        assert r["usl_r2"] > 0.99


def test_amdahl_fit_on_amdahl_curve():
    n = np.repeat(np.arange(1, 17), 3).astype(float)
    rng = np.random.default_rng(7)
    x = amdahl(n, 5e6, 0.2) * (1 + 0.005 * rng.standard_normal(n.size))
    r = fit_points(n, x)
    assert r["amdahl_sigma"] == pytest.approx(0.2, rel=0.05)
    assert r["amdahl_x1_ops_per_sec"] == pytest.approx(5e6, rel=0.02)
    assert r["amdahl_ceiling_ops_per_sec"] == pytest.approx(25e6, rel=0.05)
    # No coherency term in the data: the USL is "no fit", with the reason.
    assert math.isnan(r["usl_kappa"]) and r["usl_note"].startswith("no fit")


def test_too_few_thread_counts_gives_note():
    r = fit_points([1, 1, 2, 2], [1e6, 1.1e6, 1.5e6, 1.6e6])
    assert "need >= 3" in r["usl_note"] and "need >= 3" in r["amdahl_note"]
    assert math.isnan(r["usl_sigma"]) and r["fit_points"] == 4


def test_no_fit_through_oversubscribed_points():
    """1, 2 threads within the CPUs, 4..16 oversubscribed: no fit, and the
    reason and the points left out are recorded."""
    n = [1, 2, 4, 8, 16] * 3
    x = [float(usl(t, 8e6, 0.1, 0.01)) for t in n]
    over = [t > 2 for t in n]
    r = fit_points(n, x, over)
    assert r["fit_threads"] == "1;2" and r["fit_points"] == 6
    assert r["oversubscribed_points_left_out"] == 9
    assert r["usl_note"] == r["amdahl_note"]
    assert "2 thread count(s) up to the number of CPUs" in r["usl_note"]
    assert all(math.isnan(r[c]) for c in ("usl_sigma", "amdahl_sigma"))
    # Without the oversubscribed flag the same points do fit.
    assert fit_points(n, x)["usl_note"] == ""


def test_meaningless_parameters_are_no_fit():
    # Throughput falling from one thread on: Amdahl sigma > 1.
    n = np.repeat([1, 2, 3, 4], 3)
    x = 8e6 / n ** 2
    r = fit_points(n, x)
    assert r["amdahl_note"].startswith("no fit: sigma") and "> 1" in \
        r["amdahl_note"]
    assert math.isnan(r["amdahl_sigma"])
    # Pure noise around a constant: standard errors larger than values.
    rng = np.random.default_rng(3)
    x = 5e6 * (1 + 0.3 * rng.standard_normal(n.size))
    r = fit_points(n, np.abs(x))
    assert r["usl_note"].startswith("no fit"), r


def test_peak_and_format_edge_cases():
    assert usl_peak(0.1, 0.0) == math.inf
    assert usl_peak(1.5, 0.01) == 1.0
    assert usl_peak(0.19, 0.01) == pytest.approx(9.0)
    assert fmt(math.nan) == "" and fmt(math.inf) == "inf"
    assert fmt(1234567.0) == "1.23457e+06" and fmt(48) == "48"
    assert float(usl(1, 3.0, 0.5, 0.5)) == 3.0


# --- end to end ----------------------------------------------------------

def test_report_end_to_end_and_byte_identical(tmp_path, experiments_dir):
    a, b = tmp_path / "a", tmp_path / "b"
    write_runs_csv(a)
    shutil.copytree(a, b)
    (a / "manifest.json").write_text(
        '{"host": "box1", "cpu_model": "Test CPU", "kernel": "6.1", '
        '"command": ["locklab", "run"], "other": 1}')
    shutil.copy(a / "manifest.json", b / "manifest.json")

    ra = run_report(experiments_dir, a)
    assert ra.returncode == 0, ra.stderr
    rb = run_report(experiments_dir, b, module=False)  # make_report.py
    assert rb.returncode == 0, rb.stderr

    da, db = digest_tree(a), digest_tree(b)
    assert da == db
    slug = SLUG
    for stem in ("throughput", "relative", "fairness", "latency_p99",
                 "handover", "cpu_per_mop"):
        for ext in ("png", "svg", "pdf"):
            assert f"figures/{stem}__{slug}.{ext}" in da, stem

    rows = read_fits(a)
    assert tuple(rows[0].keys())[:1] == ("lock",)
    assert set(FIT_COLUMNS) <= set(rows[0].keys())
    assert [r["lock"] for r in rows] == sorted(list(TRUE_USL) + ["null"])
    by_lock = {r["lock"]: r for r in rows}
    assert by_lock["null"]["usl_sigma"] == ""
    assert by_lock["null"]["usl_note"].startswith("no fit")
    for lock, (lam, sigma, kappa) in TRUE_USL.items():
        # Fitted over 1..12 threads only (13..16 are oversubscribed).
        assert by_lock[lock]["fit_threads"] == ";".join(
            str(t) for t in range(1, 13))
        assert by_lock[lock]["oversubscribed_points_left_out"] == "12"
        assert float(by_lock[lock]["usl_sigma"]) == pytest.approx(
            sigma, rel=0.1)
        assert float(by_lock[lock]["usl_kappa"]) == pytest.approx(
            kappa, rel=0.15)
        assert by_lock[lock]["fit_points"] == "36"  # failed row left out
        assert by_lock[lock]["figures"] == slug

    md = (a / "report.md").read_text()
    assert md.startswith("# LockLab report")
    for needle in ("testbox", "0123abc", "box1", "Test CPU", "locklab run",
                   f"![Throughput](figures/throughput__{slug}.png)",
                   "| mcs ", "12.0 M", "cna:threshold=1000", "1 skipped"):
        assert needle in md, needle
    for name in ("svg", "pdf"):
        data = (a / "figures" / f"throughput__{slug}.{name}").read_bytes()
        assert b"CreationDate" not in data and b"<dc:date>" not in data

    summary = list(csv.DictReader(open(a / "summary.csv")))
    assert len(summary) == 3 * 16 + 2
    s = next(r for r in summary if r["lock"] == "mcs" and r["threads"] == "4")
    assert s["repeats"] == "3" and s["figures"] == slug
    assert float(s["ops_per_sec_min"]) <= float(s["ops_per_sec_median"]) \
        <= float(s["ops_per_sec_max"])


def test_several_workloads_get_suffixed_figures(tmp_path, experiments_dir):
    write_runs_csv(tmp_path, workloads=(("1", "0", "100", "spread"),
                                        ("4", "50", "100", "compact")),
                   extra_rows=False)
    r = run_report(experiments_dir, tmp_path)
    assert r.returncode == 0, r.stderr
    names = set(os.listdir(tmp_path / "figures"))
    assert "throughput__spread-cl1-cs0-ncs100-d1s.png" in names
    assert "throughput__compact-cl4-cs50-ncs100-d1s.pdf" in names
    assert "throughput.png" not in names
    rows = read_fits(tmp_path)
    assert len(rows) == 2 * len(TRUE_USL)
    assert {r["placement"] for r in rows} == {"spread", "compact"}
    md = (tmp_path / "report.md").read_text()
    assert md.count("## Configuration:") == 2


# --- errors --------------------------------------------------------------

def test_missing_columns_exit_nonzero_and_name_them(tmp_path,
                                                    experiments_dir):
    write_runs_csv(tmp_path, drop=("ops_per_sec", "jain_fairness"))
    r = run_report(experiments_dir, tmp_path)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "ops_per_sec" in lines[0] and "jain_fairness" in lines[0]
    assert "lat_p99_ns" not in lines[0]
    assert not (tmp_path / "figures").exists()


def test_missing_runs_csv_exit_nonzero(tmp_path, experiments_dir):
    r = run_report(experiments_dir, tmp_path)
    assert r.returncode != 0
    assert "runs.csv" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_required_columns_are_the_documented_ones():
    assert len(REQUIRED_COLUMNS) == 28 and "mutex_ok" in REQUIRED_COLUMNS


def test_partial_merge_is_marked_in_the_report(tmp_path, experiments_dir):
    # `locklab merge --partial` writes the missing shards into the manifest's
    # `partial`: the report must say so at its top, naming them.
    d = tmp_path / "p"
    write_runs_csv(d)
    (d / "manifest.json").write_text(
        '{"machine": {"host": "box1"}, "partial": ["shard 2/3 missing"]}')
    r = run_report(experiments_dir, d)
    assert r.returncode == 0, r.stderr
    md = (d / "report.md").read_text()
    assert "PARTIAL" in md and "shard 2/3 missing" in md
