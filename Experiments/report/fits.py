"""Amdahl and Universal Scalability Law fits of throughput against threads.

Amdahl:  X(N) = X1 * N / (1 + sigma*(N-1))
USL:     X(N) = lambda * N / (1 + sigma*(N-1) + kappa*N*(N-1))

Both are fitted by (unweighted) least squares to the per-run points with
scipy.optimize.curve_fit (method 'trf', sigma, kappa >= 0). Standard errors
are the square roots of the covariance diagonal. The data are divided by
their maximum before fitting so the optimiser works on O(1) numbers; the
throughput parameters and their errors are scaled back afterwards.

Fits are valid only where the laws' assumptions hold: points with more
threads than CPUs (oversubscribed) are left out, at least three distinct
thread counts must remain, and a fit whose parameters leave their meaningful
range (sigma in [0, 1], a USL peak N* >= 1) or whose standard error exceeds
its value is "no fit", with the reason in the note.
"""

from __future__ import annotations

import csv
import math
import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit


MIN_DISTINCT_THREADS = 3
SIGMA_EPS = 1e-9   # sigma below this: Amdahl ceiling is infinite
KAPPA_EPS = 1e-9   # kappa below this: USL has no finite peak

# Numeric results of one fit; sigma, kappa and R^2 are dimensionless.
VALUE_COLUMNS = (
    "amdahl_x1_ops_per_sec", "amdahl_x1_se_ops_per_sec", "amdahl_sigma",
    "amdahl_sigma_se", "amdahl_ceiling_ops_per_sec",
    "usl_lambda_ops_per_sec", "usl_lambda_se_ops_per_sec", "usl_sigma",
    "usl_sigma_se", "usl_kappa", "usl_kappa_se", "usl_peak_threads",
    "usl_r2",
)
AMDAHL_COLUMNS = VALUE_COLUMNS[:5]
USL_COLUMNS = VALUE_COLUMNS[5:]
# fits.csv: the series (lock and context columns, then the figure slug),
# the points used, the values, and why a law has no fit.
POINT_COLUMNS = ("fit_threads", "fit_points", "oversubscribed_points_left_out")
NOTE_COLUMNS = ("amdahl_note", "usl_note")
FIT_COLUMNS = ("lock",) + POINT_COLUMNS + VALUE_COLUMNS + NOTE_COLUMNS


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


def _no_fit(row, columns, note_key, reason):
    for c in columns:
        row[c] = math.nan
    row[note_key] = "no fit: " + reason


def _check(row, prefix, names, note_key, columns):
    """'no fit' when a standard error is missing or exceeds its value."""
    for name in names:
        unit = "_ops_per_sec" if name in ("x1", "lambda") else ""
        v = row[f"{prefix}_{name}{unit}"]
        se = row[f"{prefix}_{name}_se{unit}"]
        if not math.isfinite(se):
            _no_fit(row, columns, note_key,
                    f"{name} = {v:.3g} has no standard error")
            return False
        if se > abs(v):
            _no_fit(row, columns, note_key,
                    f"{name} = {v:.3g} +/- {se:.3g}: standard error larger "
                    f"than the value")
            return False
    return True


def fit_points(threads, xput, oversubscribed=None) -> dict:
    """Fit both laws to the points that are not oversubscribed; returns the
    point and value part of a fits row (values in ops/s, NaN when no fit)."""
    n = np.asarray(threads, dtype=float)
    x = np.asarray(xput, dtype=float)
    if oversubscribed is None:
        over = np.zeros(len(n), dtype=bool)
    else:
        over = np.asarray([o is True for o in oversubscribed], dtype=bool)
    ok = np.isfinite(n) & np.isfinite(x) & (n >= 1) & (x > 0)
    row = {c: math.nan for c in VALUE_COLUMNS}
    row["oversubscribed_points_left_out"] = int(np.sum(ok & over))
    ok &= ~over
    n, x = n[ok], x[ok]
    row["fit_points"] = int(len(n))
    row["fit_threads"] = ";".join(str(int(t)) for t in np.unique(n))
    row["amdahl_note"] = row["usl_note"] = ""
    distinct = len(np.unique(n))
    if distinct < MIN_DISTINCT_THREADS:
        reason = (f"{distinct} thread count(s) up to the number of CPUs, "
                  f"need >= {MIN_DISTINCT_THREADS}")
        _no_fit(row, AMDAHL_COLUMNS, "amdahl_note", reason)
        _no_fit(row, USL_COLUMNS, "usl_note", reason)
        return row

    scale = float(np.max(x))
    y = x / scale
    nmin = float(np.min(n))
    y1 = float(np.median(y[n == nmin])) / nmin   # per-thread at smallest N

    # Amdahl
    a_sig0 = 0.05
    try:
        a_popt, a_pcov = _curve_fit(
            amdahl, n, y,
            starts=[(y1, 0.05), (y1, 0.5), (y1, 2.0)],
            lower=(0.0, 0.0), upper=(np.inf, np.inf))
        x1, sig = float(a_popt[0]), float(a_popt[1])
        row["amdahl_x1_ops_per_sec"] = x1 * scale
        row["amdahl_x1_se_ops_per_sec"] = _se(a_pcov, 0) * scale
        row["amdahl_sigma"] = sig
        row["amdahl_sigma_se"] = _se(a_pcov, 1)
        row["amdahl_ceiling_ops_per_sec"] = (
            math.inf if sig <= SIGMA_EPS else x1 * scale / sig)
        a_sig0 = min(max(sig, 1e-3), 1.0)
        if sig > 1.0:
            _no_fit(row, AMDAHL_COLUMNS, "amdahl_note",
                    f"sigma = {sig:.3g} > 1 (throughput falls below one "
                    f"thread's; Amdahl's law cannot describe it)")
        else:
            _check(row, "amdahl", ("x1", "sigma"), "amdahl_note",
                   AMDAHL_COLUMNS)
    except RuntimeError as exc:
        _no_fit(row, AMDAHL_COLUMNS, "amdahl_note", f"fit failed: {exc}")

    # USL: start from the Amdahl answer and a few contention strengths.
    try:
        starts = [(y1, a_sig0, k) for k in (1e-4, 1e-2, 1e-1)]
        starts += [(y1, 0.05, 1e-3), (y1, 0.5, 1e-3)]
        u_popt, u_pcov = _curve_fit(usl, n, y, starts=starts,
                                    lower=(0.0, 0.0, 0.0),
                                    upper=(np.inf, np.inf, np.inf))
        lam, sig, kap = (float(v) for v in u_popt)
        row["usl_lambda_ops_per_sec"] = lam * scale
        row["usl_lambda_se_ops_per_sec"] = _se(u_pcov, 0) * scale
        row["usl_sigma"] = sig
        row["usl_sigma_se"] = _se(u_pcov, 1)
        row["usl_kappa"] = kap
        row["usl_kappa_se"] = _se(u_pcov, 2)
        peak = usl_peak(sig, kap)
        row["usl_peak_threads"] = peak
        resid = x - usl(n, lam * scale, sig, kap)
        sst = float(np.sum((x - np.mean(x)) ** 2))
        row["usl_r2"] = (1.0 - float(np.sum(resid ** 2)) / sst
                         if sst > 0 else math.nan)
        if sig > 1.0:
            _no_fit(row, USL_COLUMNS, "usl_note",
                    f"sigma = {sig:.3g} > 1 (throughput never exceeds one "
                    f"thread's)")
        elif kap <= KAPPA_EPS:
            _no_fit(row, USL_COLUMNS, "usl_note",
                    "kappa = 0: no coherency delay in the data (the Amdahl "
                    "fit describes it)")
        elif math.isfinite(peak) and peak < 1.0:
            _no_fit(row, USL_COLUMNS, "usl_note",
                    f"peak N* = {peak:.2g} threads < 1")
        else:
            _check(row, "usl", ("lambda", "sigma", "kappa"), "usl_note",
                   USL_COLUMNS)
    except RuntimeError as exc:
        _no_fit(row, USL_COLUMNS, "usl_note", f"fit failed: {exc}")
    return row


def fit_all(runs) -> list:
    """One row per series (lock in a context), ordered by context then
    lock. Each row also carries 'context' (its index in runs.contexts)."""
    df = runs.df
    rows = []
    for (ci, lk), g in df.groupby(["context", "lock"], sort=True):
        r = fit_points(g["threads"].to_numpy(), g["ops_per_sec"].to_numpy(),
                       g["oversubscribed"].tolist())
        r["lock"] = lk
        r["context"] = int(ci)
        rows.append(r)
    return rows


def fits_columns(runs) -> tuple:
    ctx_cols = tuple(c for c, _ in runs.contexts[0].key) if runs.contexts \
        else ()
    return ("lock",) + ctx_cols + ("figures",) + FIT_COLUMNS[1:]


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


def as_written(value: float) -> float:
    """`value` as fits.csv holds it (%.6g read back). Figures draw curves
    from these, not from the optimiser's last bits, which differ between
    CPUs (OpenBLAS picks its kernels per CPU), so a committed figure
    regenerates byte-identically on another machine."""
    return float(fmt(value))


def write_fits_csv(rows, runs, path: str) -> None:
    """fits.csv: one row per series; `figures` is the slug in the names of
    the figures that draw it."""
    columns = fits_columns(runs)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            ctx = runs.contexts[r["context"]]
            full = dict(r)
            full.update(dict(ctx.key))
            full["figures"] = ctx.slug
            w.writerow([fmt(full.get(c)) for c in columns])


def fit_lookup(rows) -> dict:
    """(context index, lock) -> fits row."""
    return {(r["context"], r["lock"]): r for r in rows}


__all__ = ["amdahl", "usl", "usl_peak", "fit_points", "fit_all", "as_written",
           "write_fits_csv", "fit_lookup", "FIT_COLUMNS", "VALUE_COLUMNS"]
