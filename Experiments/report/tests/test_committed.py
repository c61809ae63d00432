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
INPUTS = ("runs.csv", "threads.csv", "manifest.json", "report.json")
OUTPUTS = ("report.md", "report.html", "fits.csv", "summary.csv",
           "report.json")
COMMITTED = sorted(os.path.dirname(p) for p in glob.glob(
    os.path.join(REPO, "results", "**", "report.md"), recursive=True))


def test_there_are_committed_reports():
    assert COMMITTED, "no results/**/report.md found"


@pytest.mark.parametrize("folder", COMMITTED,
                         ids=[os.path.relpath(p, REPO) for p in COMMITTED])
def test_committed_report_regenerates_byte_identical(folder, tmp_path,
                                                     experiments_dir):
    scratch = tmp_path / "regen"
    scratch.mkdir()
    for name in INPUTS:
        if os.path.exists(os.path.join(folder, name)):
            shutil.copy(os.path.join(folder, name), scratch / name)
    assert (scratch / "report.json").exists(), (
        f"{folder} has no report.json: regenerate it with `locklab report`")
    r = subprocess.run([sys.executable, "-m", "report", str(scratch)],
                       cwd=experiments_dir, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    differ = [n for n in OUTPUTS
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
