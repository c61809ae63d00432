"""Amdahl and Universal Scalability Law fits of throughput against threads.

Amdahl:  X(N) = X1 * N / (1 + sigma*(N-1))
USL:     X(N) = lambda * N / (1 + sigma*(N-1) + kappa*N*(N-1))

Both are fitted by (unweighted) least squares to the per-run points with
scipy.optimize.curve_fit (method 'trf', sigma, kappa >= 0). Standard errors
are the square roots of the covariance diagonal. The data are divided by
their maximum before fitting so the optimiser works on O(1) numbers; the
throughput parameters and their errors are scaled back afterwards.
"""

from __future__ import annotations

import csv
import math
import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from .load import CONFIG_COLUMNS, WORKLOAD_COLUMNS, workload_sort_key

MIN_DISTINCT_THREADS = 3
SIGMA_EPS = 1e-9   # sigma below this: Amdahl ceiling is infinite
KAPPA_EPS = 1e-9   # kappa below this: USL has no finite peak

FIT_COLUMNS = (
    "lock", "cs_lines", "cs_ns", "ncs_ns", "placement", "workload", "points",
    "amdahl_x1", "amdahl_x1_se", "amdahl_sigma", "amdahl_sigma_se",
    "amdahl_ceiling_ops_per_sec",
    "usl_lambda", "usl_lambda_se", "usl_sigma", "usl_sigma_se",
    "usl_kappa", "usl_kappa_se", "usl_peak_threads", "usl_r2", "note",
)


def amdahl(n, x1, sigma):
    n = np.asarray(n, dtype=float)
    return x1 * n / (1.0 + sigma * (n - 1.0))


def usl(n, lam, sigma, kappa):
    n = np.asarray(n, dtype=float)
    return lam * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))


def usl_peak(sigma: float, kappa: float) -> float:
    """N* = sqrt((1-sigma)/kappa); inf if kappa ~ 0; 1 if sigma >= 1."""
    if not (math.isfinite(sigma) and math.isfinite(kappa)):
        return math.nan
    if sigma >= 1.0:
        return 1.0
    if kappa <= KAPPA_EPS:
        return math.inf
    return math.sqrt((1.0 - sigma) / kappa)


def _se(pcov, i):
    if pcov is None:
        return math.nan
    v = pcov[i][i]
    if not np.isfinite(v) or v < 0:
        return math.nan
    return math.sqrt(v)


def _curve_fit(func, n, y, starts, lower, upper):
    """Best of several deterministic starting points (lowest SSR)."""
    best = None
    errors = []
    for p0 in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                popt, pcov = curve_fit(func, n, y, p0=p0,
                                       bounds=(lower, upper), method="trf",
                                       maxfev=20000)
            except (RuntimeError, ValueError) as exc:
                errors.append(str(exc).splitlines()[0])
                continue
        ssr = float(np.sum((y - func(n, *popt)) ** 2))
        if not np.isfinite(ssr):
            continue
        if best is None or ssr < best[0]:
            best = (ssr, popt, pcov)
    if best is None:
        raise RuntimeError(errors[0] if errors else "no finite fit")
    return best[1], best[2]


def fit_points(threads, xput) -> dict:
    """Fit both laws to the points; returns the numeric part of a fits row."""
    n = np.asarray(threads, dtype=float)
    x = np.asarray(xput, dtype=float)
    ok = np.isfinite(n) & np.isfinite(x) & (n >= 1) & (x > 0)
    n, x = n[ok], x[ok]
    row = {c: math.nan for c in FIT_COLUMNS[FIT_COLUMNS.index("points") + 1:-1]}
    row["points"] = int(len(n))
    row["note"] = ""
    distinct = len(np.unique(n))
    if distinct < MIN_DISTINCT_THREADS:
        row["note"] = (f"need >= {MIN_DISTINCT_THREADS} distinct thread "
                       f"counts with positive throughput, have {distinct}")
        return row

    scale = float(np.max(x))
    y = x / scale
    nmin = float(np.min(n))
    y1 = float(np.median(y[n == nmin])) / nmin   # per-thread at smallest N
    notes = []

    # Amdahl
    try:
        a_popt, a_pcov = _curve_fit(
            amdahl, n, y,
            starts=[(y1, 0.05), (y1, 0.5), (y1, 2.0)],
            lower=(0.0, 0.0), upper=(np.inf, np.inf))
        x1, sig = float(a_popt[0]), float(a_popt[1])
        row["amdahl_x1"] = x1 * scale
        row["amdahl_x1_se"] = _se(a_pcov, 0) * scale
        row["amdahl_sigma"] = sig
        row["amdahl_sigma_se"] = _se(a_pcov, 1)
        row["amdahl_ceiling_ops_per_sec"] = (
            math.inf if sig <= SIGMA_EPS else x1 * scale / sig)
        a_sig0 = max(sig, 1e-3)
    except RuntimeError as exc:
        notes.append(f"amdahl fit failed: {exc}")
        a_sig0 = 0.05

    # USL: start from the Amdahl answer and a few contention strengths.
    try:
        starts = [(y1, a_sig0, k) for k in (1e-4, 1e-2, 1e-1)]
        starts += [(y1, 0.05, 1e-3), (y1, 0.5, 1e-3)]
        u_popt, u_pcov = _curve_fit(usl, n, y, starts=starts,
                                    lower=(0.0, 0.0, 0.0),
                                    upper=(np.inf, np.inf, np.inf))
        lam, sig, kap = (float(v) for v in u_popt)
        row["usl_lambda"] = lam * scale
        row["usl_lambda_se"] = _se(u_pcov, 0) * scale
        row["usl_sigma"] = sig
        row["usl_sigma_se"] = _se(u_pcov, 1)
        row["usl_kappa"] = kap
        row["usl_kappa_se"] = _se(u_pcov, 2)
        row["usl_peak_threads"] = usl_peak(sig, kap)
        resid = x - usl(n, lam * scale, sig, kap)
        sst = float(np.sum((x - np.mean(x)) ** 2))
        row["usl_r2"] = (1.0 - float(np.sum(resid ** 2)) / sst
                         if sst > 0 else math.nan)
        if sig >= 1.0:
            notes.append("usl sigma >= 1: throughput never exceeds 1 thread")
    except RuntimeError as exc:
        notes.append(f"usl fit failed: {exc}")

    row["note"] = "; ".join(notes)
    return row


def fit_all(df) -> list:
    """One row per configuration (lock, cs_lines, cs_ns, ncs_ns, placement),
    ordered by workload then lock."""
    rows = []
    groups = {}
    for key, g in df.groupby(list(CONFIG_COLUMNS), sort=False):
        groups[tuple(key)] = g
    keys = sorted(groups, key=lambda k: (workload_sort_key(k[1:]), k[0]))
    for key in keys:
        g = groups[key]
        r = fit_points(g["threads"].to_numpy(), g["ops_per_sec"].to_numpy())
        r.update(dict(zip(CONFIG_COLUMNS, key)))
        rows.append(r)
    return rows


def fmt(value) -> str:
    """Fixed float formatting for fits.csv: %.6g, 'inf', '' for missing."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    v = float(value)
    if math.isnan(v):
        return ""
    return "%.6g" % v


def write_fits_csv(rows, path: str) -> None:
    with open(path, "w", encoding="ascii", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(FIT_COLUMNS)
        for r in rows:
            w.writerow([fmt(r.get(c)) for c in FIT_COLUMNS])


def fit_lookup(rows) -> dict:
    return {tuple(r[c] for c in CONFIG_COLUMNS): r for r in rows}


__all__ = ["amdahl", "usl", "usl_peak", "fit_points", "fit_all",
           "write_fits_csv", "fit_lookup", "FIT_COLUMNS", "WORKLOAD_COLUMNS"]
