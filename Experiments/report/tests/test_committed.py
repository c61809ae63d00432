"""Every committed report under results/ regenerates byte-identically from
its own runs.csv (and manifest.json, threads.csv, report.json) into a
scratch folder: what is committed is what the generator draws."""

import filecmp
import glob
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
# Inputs: everything but what the generator writes. The machine folder is
# copied whole, so that a sibling coherence/ result is found as it is here.
GENERATED = ("report.md", "report.html", "fits.csv", "summary.csv",
             "figures")
OUTPUTS = ("report.md", "report.html", "fits.csv", "summary.csv",
           "report.json")
# Not results/local/: a user's own runs, which git ignores (Makefile RESULTS).
COMMITTED = sorted(os.path.dirname(p) for p in glob.glob(
    os.path.join(REPO, "results", "**", "report.md"), recursive=True)
    if not os.path.relpath(p, REPO).startswith(os.path.join("results",
                                                              "local", "")))


def test_there_are_committed_reports():
    assert COMMITTED, "no results/**/report.md found"


@pytest.mark.parametrize("folder", COMMITTED,
                         ids=[os.path.relpath(p, REPO) for p in COMMITTED])
def test_committed_report_regenerates_byte_identical(folder, tmp_path,
                                                     experiments_dir):
    machine = os.path.dirname(folder)
    copy = tmp_path / os.path.basename(machine)
    shutil.copytree(machine, copy, ignore=lambda d, names: [
        n for n in names if n in GENERATED
        and os.path.abspath(d) != os.path.abspath(machine)])
    scratch = copy / os.path.basename(folder)
    # The coherence figures of a coherence-only folder are its output too.
    is_runs = (scratch / "runs.csv").exists()
    if is_runs:
        assert (scratch / "report.json").exists(), (
            f"{folder} has no report.json: regenerate it with "
            f"`locklab report`")
    r = subprocess.run([sys.executable, "-m", "report", str(scratch)],
                       cwd=experiments_dir, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    outputs = OUTPUTS if is_runs else ("report.md",)
    differ = [n for n in outputs
              if not filecmp.cmp(os.path.join(folder, n), scratch / n,
                                 shallow=False)]
    want = sorted(os.listdir(os.path.join(folder, "figures")))
    got = sorted(os.listdir(scratch / "figures"))
    assert want == got, "figure names differ"
    differ += [f"figures/{n}" for n in want if not filecmp.cmp(
        os.path.join(folder, "figures", n), scratch / "figures" / n,
        shallow=False)]
    assert not differ, (f"{os.path.relpath(folder, REPO)}: regenerated "
                        f"files differ from the committed ones: {differ} "
                        f"(run `make report DIR=...` and commit)")
