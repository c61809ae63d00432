import csv
import os
import sys

import numpy as np
import pytest

EXPERIMENTS = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
if EXPERIMENTS not in sys.path:
    sys.path.insert(0, EXPERIMENTS)

from report.fits import usl  # noqa: E402
from report.load import REQUIRED_COLUMNS  # noqa: E402

# lock label -> (lambda ops/s, sigma, kappa)
TRUE_USL = {
    "mcs": (12e6, 0.10, 0.004),
    "tas": (40e6, 0.30, 0.010),
    "cna:threshold=1000": (10e6, 0.20, 0.005),
}
THREADS = tuple(range(1, 17))
REPEATS = 3
NOISE = 0.005         # multiplicative, 1 sigma
SEED = 20240601
# The figure-name slug of the fixture's default workload (no mem_node or
# virtual_nodes columns in the fixture).
SLUG = "spread-cl1-cs0-ncs100-d1s"


def write_runs_csv(directory, workloads=(("1", "0", "100", "spread"),),
                   seed=SEED, drop=(), extra_rows=True):
    """A runs.csv from known USL curves with small multiplicative noise."""
    rng = np.random.default_rng(seed)
    cols = [c for c in REQUIRED_COLUMNS if c not in drop]
    header = cols + ["lock_name", "status", "experiment"]
    rows = []
    rid = 0

    def row(lock, w, n, rep, xput, status="ok"):
        nonlocal rid
        rid += 1
        duration = 1.0
        ops = int(round(xput * duration))
        r = {
            "run_id": f"r{rid:04d}", "lock": lock, "threads": n,
            "placement": w[3], "nodes": 2, "oversubscribed":
                "true" if n > 12 else "false",
            "cs_lines": w[0], "cs_ns": w[1], "ncs_ns": w[2],
            "duration_s": "%.3f" % duration, "repeat": rep, "ops": ops,
            "ops_per_sec": "%.3f" % xput,
            "jain_fairness": "%.4f" % (1.0 - 0.02 * n * rng.random() / 16),
            "min_thread_ops": ops // (n + 1), "max_thread_ops": ops // n + 1,
            "lat_p50_ns": "%.1f" % (20.0 * n), "lat_p99_ns":
                "%.1f" % (100.0 * n * (1 + 0.1 * rng.random())),
            "lat_p999_ns": "%.1f" % (400.0 * n), "lat_max_ns": 10000 * n,
            "same_node_handover_frac": "%.4f" % (0.5 + 0.4 * rng.random()),
            "cpu_user_s": "%.4f" % (0.9 * n), "cpu_sys_s": "%.4f" % (0.05 * n),
            "ctx_vol": n, "ctx_invol": 2 * n, "mutex_ok": "true",
            "machine": "testbox", "git_commit": "0123abc",
            "lock_name": lock.split(":")[0], "status": status,
            "experiment": "unit",
        }
        rows.append([r.get(c, "") for c in header])

    for w in workloads:
        for lock, (lam, sig, kap) in sorted(TRUE_USL.items()):
            for n in THREADS:
                for rep in range(REPEATS):
                    x = float(usl(n, lam, sig, kap)) * (
                        1.0 + NOISE * rng.standard_normal())
                    row(lock, w, n, rep, x)
        if extra_rows:
            # Too few thread counts to fit, and rows that must be ignored.
            for n in (1, 2):
                for rep in range(REPEATS):
                    row("null", w, n, rep, 1e8 / n)
            row("mcs", w, 8, 9, 1.0, status="failed")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "runs.csv"), "w", newline="") as fh:
        wr = csv.writer(fh, lineterminator="\n")
        wr.writerow(header)
        wr.writerows(rows)
    with open(os.path.join(directory, "threads.csv"), "w") as fh:
        fh.write("run_id,thread,ops\n")
    return os.path.join(directory, "runs.csv")


@pytest.fixture
def experiments_dir():
    return EXPERIMENTS
