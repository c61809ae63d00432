"""Figures, styles, tables and the HTML page on small synthetic CSVs."""

import csv
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_runs_csv
from report import options as ropts
from report.figures import (METRICS, base2_axis, draw_figure, needs_log,
                            resolve_panels)
from report.fits import fit_all, fit_lookup
from report.load import load_runs
from report.styles import FAMILIES, lock_style
from report.tables import duration_ns, markdown_table, si

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
THROUGHPUT = next(m for m in METRICS if m.stem == "throughput")
LATENCY = next(m for m in METRICS if m.stem == "latency_p99")


def _lines_by_label(fig):
    out = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            out.setdefault(line.get_label(), []).append(line)
    return out


def _figure(directory, metric=THROUGHPUT, panels="family"):
    runs = load_runs(str(directory))
    fits = fit_lookup(fit_all(runs))
    cdf = runs.df[runs.df["context"] == 0]
    pan = resolve_panels(set(cdf["lock"]), panels)
    fig, reason = draw_figure(metric, cdf, runs.contexts[0], 0, pan, fits,
                              "mcs", "")
    return fig, reason, pan


def test_panels_group_by_family_in_list_order():
    labels = ["mcs", "ck-mcs", "tas", "cna:threshold=1000", "pthread-mutex",
              "null", "hmcs", "clh", "brand-new-lock"]  # null: old no-lock
    panels = resolve_panels(labels, "family")
    assert panels == [
        ("baseline", ["null", "pthread-mutex"]),
        ("ck-reference", ["ck-mcs"]),
        ("spin", ["tas"]),
        ("queue", ["clh", "mcs"]),
        ("numa-aware", ["cna:threshold=1000", "hmcs"]),
        ("other", ["brand-new-lock"]),
    ]
    assert resolve_panels(labels, "none") == [("all locks", sorted(labels))]
    custom = resolve_panels(labels, [["mcs", "ck-mcs"], ["cna"]])
    assert custom[0] == ("mcs, ck-mcs", ["ck-mcs", "mcs"])
    assert custom[1] == ("cna", ["cna:threshold=1000"])
    assert custom[2][0] == "other" and "tas" in custom[2][1]


def test_baselines_drawn_grey_in_other_panels(tmp_path):
    write_runs_csv(tmp_path)
    fig, _, panels = _figure(tmp_path)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == [t for t, _ in panels]
    by_title = {ax.get_title(): ax for ax in fig.axes}
    spin = {ln.get_label(): ln for ln in by_title["spin"].get_lines()}
    assert "mcs (baseline)" in spin and "tas" in spin
    assert spin["mcs (baseline)"].get_color() == "0.70"
    queue = {ln.get_label() for ln in by_title["queue"].get_lines()}
    assert "mcs" in queue and "mcs (baseline)" not in queue


def test_same_lock_same_colour_in_two_experiments(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_runs_csv(a)
    write_runs_csv(b, extra_rows=False)
    # b: a different set of locks (tas dropped, one renamed).
    rows = list(csv.reader(open(b / "runs.csv")))
    lock = rows[0].index("lock")
    rows = [rows[0]] + [r for r in rows[1:] if r[lock] != "tas"]
    with open(b / "runs.csv", "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    fa, _, _ = _figure(a)
    fb, _, _ = _figure(b)
    la, lb = _lines_by_label(fa), _lines_by_label(fb)
    for lk in ("mcs", "cna:threshold=1000"):
        assert la[lk][0].get_color() == lb[lk][0].get_color(), lk
        assert la[lk][0].get_marker() == lb[lk][0].get_marker(), lk
    assert lock_style("mcs").color == lock_style("ck-mcs").color
    assert lock_style("mcs").linestyle == "-"
    assert lock_style("ck-mcs").linestyle == "--"
    assert lock_style("cna:threshold=1000").color == lock_style("cna").color


def test_colours_distinct_within_each_family():
    from report.styles import VARIANTS
    fams = {}
    for name, fam in FAMILIES.items():
        if name in VARIANTS or name == "null":
            continue   # a variant shares its lock's hue, dash-dot
        fams.setdefault(fam, []).append(lock_style(name).color)
    assert lock_style("mcs-stp").color == lock_style("mcs").color
    assert lock_style("mcs-stp").linestyle == "-."
    for fam, colours in fams.items():
        assert len(set(colours)) == len(colours), fam


def test_log_scale_switches_on_past_two_decades(tmp_path):
    assert not needs_log([1.0, 100.0])
    assert needs_log([1.0, 100.5])
    assert not needs_log([0.0, 5.0, 400.0])  # zeros are not values here
    assert base2_axis([1, 2, 4, 16]) and not base2_axis([1, 2, 3])
    assert not base2_axis([4])
    write_runs_csv(tmp_path)   # throughput spans < 2 decades
    fig, _, _ = _figure(tmp_path)
    assert fig.axes[0].get_yscale() == "linear"
    assert "log" not in fig.axes[0].get_ylabel()
    # One lock collapses by 10^4 at 16 threads: log y, said in the label.
    rows = list(csv.reader(open(tmp_path / "runs.csv")))
    h = rows[0]
    for r in rows[1:]:
        if r[h.index("lock")] == "tas" and r[h.index("threads")] == "16":
            r[h.index("ops_per_sec")] = "150.0"
    with open(tmp_path / "runs.csv", "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    fig, _, _ = _figure(tmp_path)
    assert fig.axes[0].get_yscale() == "log"
    assert "log scale" in fig.axes[0].get_ylabel()


def test_empty_latency_is_missing_not_zero(tmp_path):
    write_runs_csv(tmp_path)
    rows = list(csv.reader(open(tmp_path / "runs.csv")))
    h = rows[0] + ["lat_samples"]
    body = []
    for r in rows[1:]:
        r = r + ["100"]
        if r[h.index("lock")] == "mcs" and r[h.index("threads")] == "16":
            # An old CSV: zeros with lat_samples 0.
            for c in ("lat_p50_ns", "lat_p99_ns", "lat_p999_ns",
                      "lat_max_ns", "lat_samples"):
                r[h.index(c)] = "0"
        if r[h.index("lock")] == "tas" and r[h.index("threads")] == "16":
            # A new CSV: empty cells.
            for c in ("lat_p50_ns", "lat_p99_ns", "lat_p999_ns",
                      "lat_max_ns"):
                r[h.index(c)] = ""
            r[h.index("lat_samples")] = "0"
        body.append(r)
    with open(tmp_path / "runs.csv", "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([h] + body)
    runs = load_runs(str(tmp_path))
    df = runs.df
    for lk in ("mcs", "tas"):
        sel = df[(df["lock"] == lk) & (df["threads"] == 16)]
        assert len(sel) == 3 and sel["lat_p99_ns"].isna().all(), lk
    assert runs.no_latency == 6
    # The median at 15 threads is unaffected; at 16 there is no point.
    fig, _, _ = _figure(tmp_path, LATENCY)
    line = _lines_by_label(fig)["mcs"][0]
    assert 16 not in list(line.get_xdata()) and 15 in list(line.get_xdata())
    assert min(line.get_ydata()) > 0
    from report.tables import write_summary_csv
    write_summary_csv(runs, str(tmp_path / "summary.csv"))
    s = {(r["lock"], r["threads"]): r
         for r in csv.DictReader(open(tmp_path / "summary.csv"))}
    assert s[("mcs", "16")]["lat_p99_ns_median"] == ""
    assert s[("mcs", "16")]["latency_repeats"] == "0"
    assert float(s[("mcs", "15")]["lat_p99_ns_median"]) > 0


def test_units_and_aligned_tables():
    assert si(8041234.0) == "8.04 M" and si(152000) == "152 k"
    assert si(35.2) == "35.2" and si(float("nan")) == "" and si(0) == "0.00"
    assert si(999.96) == "1.00 k" and si(12.7e6) == "12.7 M"
    assert duration_ns(850) == "850 ns" and duration_ns(16.0e6) == "16.0 ms"
    lines = markdown_table(["lock \\ threads", "1", "2"],
                           [["cna:threshold-ns=1000", "8.04 M", "35.2"],
                            ["mcs", "152 k", ""]])
    assert len({len(line) for line in lines}) == 1, lines
    assert lines[2].index("|", 2) == lines[3].index("|", 2)


def test_options_remembered_and_bad_options(tmp_path):
    write_runs_csv(tmp_path, extra_rows=False)
    o = ropts.resolve(str(tmp_path), figures=["throughput"],
                      locks=["mcs", "tas"], panels="none", baseline="tas")
    ropts.save(str(tmp_path), o)
    again = ropts.resolve(str(tmp_path))
    assert again == o
    assert ropts.resolve(str(tmp_path), defaults=True).locks is None
    with pytest.raises(ropts.ReportError):
        ropts.resolve(str(tmp_path), figures=["nope"])
    with pytest.raises(ropts.ReportError):
        ropts.parse_panels("[1, 2]")
    assert ropts.parse_panels('[["mcs"], ["tas", "cna"]]') == [
        ["mcs"], ["tas", "cna"]]


def test_report_cli_options(tmp_path, experiments_dir):
    write_runs_csv(tmp_path, extra_rows=False)
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "report", str(tmp_path)]
    r = subprocess.run(cmd + ["--locks", "mcs,nosuch"], cwd=experiments_dir,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "nosuch" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run(cmd + ["--baseline", "nosuch"], cwd=experiments_dir,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "nosuch" in r.stderr
    r = subprocess.run(cmd + ["--locks", "mcs,tas", "--panels", "none",
                              "--baseline", "tas", "--figures",
                              "throughput,relative"],
                       cwd=experiments_dir, capture_output=True, text=True,
                       env=env)
    assert r.returncode == 0, r.stderr
    names = sorted(os.listdir(tmp_path / "figures"))
    assert [n for n in names if n.endswith(".png")] == [
        "relative__spread-cl1-cs0-ncs100-d1s.png",
        "throughput__spread-cl1-cs0-ncs100-d1s.png"]
    fits = list(csv.DictReader(open(tmp_path / "fits.csv")))
    assert [f["lock"] for f in fits] == ["mcs", "tas"]
    md = (tmp_path / "report.md").read_text()
    assert "cna" not in md.split("## How to read")[1]


def test_html_page_is_self_contained(tmp_path, experiments_dir):
    write_runs_csv(tmp_path, extra_rows=False)
    r = subprocess.run([sys.executable, "-m", "report", str(tmp_path),
                        "--figures", "throughput,latency_p99"],
                       cwd=experiments_dir, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 2
    # Nothing to fetch: no script, stylesheet, image or font reference; the
    # only links are the local PDF/PNG beside the page.
    assert "<script" not in page and "<link" not in page
    assert "<img" not in page and "@import" not in page
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", page)
    for m in re.finditer(r'href="([^"#][^"]*)"', page):
        assert m.group(1).startswith("figures/"), m.group(1)
    # Each SVG's ids are its own.
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    for ref in set(re.findall(r'href="#([^"]+)"', page)):
        assert ref in ids, ref


def test_families_match_locklab_list():
    """styles.FAMILIES is `locklab list`'s grouping (when a build exists)."""
    exe = next((p for p in (os.path.join(REPO, ".build", "debug",
                                         "locklab"),
                            os.path.join(REPO, ".build", "release",
                                         "locklab"))
                if os.access(p, os.X_OK)), None)
    if exe is None:
        pytest.skip("no locklab binary built: cannot compare lock families "
                    "with `locklab list --csv`")
    r = subprocess.run([exe, "list", "--csv"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    listed = {row["name"]: row["family"]
              for row in csv.DictReader(r.stdout.splitlines())}
    for name, fam in listed.items():
        assert FAMILIES.get(name) == fam, (name, fam)
