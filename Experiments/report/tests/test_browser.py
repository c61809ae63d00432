"""A headless Chromium (Debian's `chromium`, installed by `make setup`)
opens report.html from disk and takes a screenshot, which must not be
blank. Skipped, with the reason, where Chromium is missing or cannot run."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import write_runs_csv

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser():
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_page_renders_in_headless_chromium(tmp_path, experiments_dir):
    exe = _browser()
    if exe is None:
        pytest.skip("SKIPPED LOUDLY: no chromium on PATH (make setup installs "
                    "Debian's chromium); report.html was not opened in a "
                    "browser")
    d = tmp_path / "res"
    write_runs_csv(d, extra_rows=False)
    r = subprocess.run([sys.executable, "-m", "report", str(d), "--figures",
                        "throughput"], cwd=experiments_dir,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    shot = tmp_path / "shot.png"
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-dev-shm-usage", "--no-first-run",
           "--disable-extensions", "--disable-background-networking",
           f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1280,1600", "--hide-scrollbars",
           "--virtual-time-budget=5000", f"--screenshot={shot}",
           (d / "report.html").as_uri()]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.skip("SKIPPED LOUDLY: chromium did not finish in 120 s")
    if not shot.exists():
        pytest.skip("SKIPPED LOUDLY: chromium could not run here (exit "
                    f"{p.returncode}): {p.stderr.strip()[-300:]}")
    from PIL import Image
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000, img.shape
    # Not blank: plenty of non-white pixels and many colours (text, the
    # tables' borders, the figure's coloured lines).
    nonwhite = (img.sum(axis=2) < 720).mean()
    colours = len(np.unique(img.reshape(-1, 3), axis=0))
    assert nonwhite > 0.02, nonwhite
    assert colours > 50, colours
    # The figure is drawn: some strongly coloured pixels (not grey text).
    chroma = img.max(axis=2) - img.min(axis=2)
    assert (chroma > 100).sum() > 200
